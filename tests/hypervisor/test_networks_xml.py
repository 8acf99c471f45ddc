"""NetworkSpec → XML golden tests per mode, parse-back, and the validation rules (with hypothesis)."""
from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvmweb import hypervisor as hv

SPECS = {
    "isolated_bare": hv.NetworkSpec(name="iso-bare", uuid="6c0e4d1a-2b3c-4d5e-8f90-a1b2c3d4e5f6", bridge="kvtiso0"),
    "isolated_dhcp": hv.NetworkSpec(
        name="iso-dhcp", uuid="6c0e4d1a-2b3c-4d5e-8f90-a1b2c3d4e5f7", bridge="kvtiso1", subnet="10.20.30.0/24",
        gateway="10.20.30.1", dhcp_start="10.20.30.100", dhcp_end="10.20.30.199",
    ),
    "nat": hv.NetworkSpec(
        name="lab.nat", uuid="6c0e4d1a-2b3c-4d5e-8f90-a1b2c3d4e5f8", mode="nat", bridge="virbr42",
        subnet="192.168.150.0/24", gateway="192.168.150.1", dhcp_start="192.168.150.2",
        dhcp_end="192.168.150.254", domain="lab.example",
        hosts=(hv.DhcpHost("52:54:00:00:00:0a", "192.168.150.10", "web"),
               hv.DhcpHost("52:54:00:00:00:0b", "192.168.150.11")),
    ),
    "route": hv.NetworkSpec(
        name="routed_1", uuid="6c0e4d1a-2b3c-4d5e-8f90-a1b2c3d4e5f9", mode="route", forward_dev="eth0",
        subnet="172.30.0.0/16", gateway="172.30.255.254",
    ),
    "bridge": hv.NetworkSpec(name="lan", uuid="6c0e4d1a-2b3c-4d5e-8f90-a1b2c3d4e5fa", mode="bridge", bridge="br0"),
}


@pytest.mark.parametrize("key", sorted(SPECS))
def test_render_matches_golden_and_parses_back(key: str, golden) -> None:  # type: ignore[no-untyped-def]
    spec = SPECS[key]
    xml = spec.to_xml()
    golden(f"network_{key}.xml", xml)
    assert hv.NetworkSpec.from_xml(xml) == spec


def test_parses_libvirt_dump_with_prefix_and_extra_elements() -> None:
    xml = """<network connections='2'><name>x</name><uuid>6c0e4d1a-2b3c-4d5e-8f90-a1b2c3d4e5f6</uuid>
      <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
      <bridge name='virbr7' stp='on' delay='0'/><mac address='52:54:00:c1:36:53'/>
      <ip family='ipv6' address='fd00::1' prefix='64'/>
      <ip address='10.1.2.1' prefix='24'><dhcp><range start='10.1.2.2' end='10.1.2.9'/></dhcp></ip></network>"""
    spec = hv.NetworkSpec.from_xml(xml)
    assert (spec.mode, spec.bridge, spec.subnet, spec.gateway) == ("nat", "virbr7", "10.1.2.0/24", "10.1.2.1")
    assert (spec.dhcp_start, spec.dhcp_end) == ("10.1.2.2", "10.1.2.9")


def test_user_strings_never_break_the_xml() -> None:
    spec = hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2",
                          dhcp_end="10.0.0.9", hosts=(hv.DhcpHost("52:54:00:00:00:01", "10.0.0.5", "a'b"),))
    with pytest.raises(hv.InvalidRequest, match="host name"):
        spec.to_xml()
    with pytest.raises(hv.InvalidRequest):
        hv.NetworkSpec(name="x'><forward mode='nat'/>").to_xml()


def test_nic_xml() -> None:
    xml = hv.Interface.new(network="iso-1", mac="52:54:00:AB:CD:EF", model="e1000", link_up=False).to_xml()
    assert xml == ('<interface type="network">\n  <mac address="52:54:00:ab:cd:ef"/>\n'
                   '  <source network="iso-1"/>\n  <model type="e1000"/>\n  <link state="down"/>\n</interface>')
    nic = hv.DomainDocument.from_xml(f"<domain><devices>{xml}</devices></domain>").interfaces[0]
    assert nic.info() == hv.NicInfo(mac="52:54:00:ab:cd:ef", type="network", source="iso-1", model="e1000",
                                    target=None, link_up=False)
    with pytest.raises(hv.InvalidRequest, match="model"):
        hv.Interface.new(network="iso-1", mac="52:54:00:ab:cd:ef", model="ne2k")
    with pytest.raises(hv.InvalidRequest, match="network name"):
        hv.Interface.new(network="a'b", mac="52:54:00:ab:cd:ef")


# ------------------------------------------------------------------------------------------------ rules
@pytest.mark.parametrize("spec, field, words", [
    (hv.NetworkSpec(name="a b"), "name", "Invalid network name"),
    (hv.NetworkSpec(name="n", bridge="a-very-long-bridge"), "bridge", "at most 15"),
    (hv.NetworkSpec(name="n", bridge="br 0"), "bridge", "letters, digits"),
    (hv.NetworkSpec(name="n", bridge="br/0"), "bridge", "letters, digits"),
    (hv.NetworkSpec(name="n", mode="bridge"), "bridge", "existing host bridge"),
    (hv.NetworkSpec(name="n", mode="bridge", bridge="br0", subnet="10.0.0.0/24"), "subnet", "no addresses"),
    (hv.NetworkSpec(name="n", mode="nat"), "subnet", "needs an IPv4 subnet"),
    (hv.NetworkSpec(name="n", mode="route"), "subnet", "needs an IPv4 subnet"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24"), "gateway", "Give the gateway"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.5/24", gateway="10.0.0.1"), "subnet", "did you mean 10.0.0.0/24"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/31", gateway="10.0.0.1"), "subnet", "/30"),
    (hv.NetworkSpec(name="n", subnet="127.0.0.0/8", gateway="127.0.0.1"), "subnet", "reserved"),
    (hv.NetworkSpec(name="n", subnet="banana", gateway="10.0.0.1"), "subnet", "Invalid subnet"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.1.1"), "gateway", "outside the subnet"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.255"), "gateway", "outside the subnet"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2"), "dhcp_end",
     "both ends"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.9",
                    dhcp_end="10.0.0.2"), "dhcp_end", "before it starts"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.50", dhcp_start="10.0.0.2",
                    dhcp_end="10.0.0.99"), "dhcp_start", "covers the gateway"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2",
                    dhcp_end="10.0.1.9"), "dhcp_end", "outside the subnet"),
    (hv.NetworkSpec(name="n", dhcp_start="10.0.0.2", dhcp_end="10.0.0.9"), "dhcp_start", "subnet first"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2", dhcp_end="10.0.0.9",
                    hosts=(hv.DhcpHost("52:54:00:00:00:01", "10.0.0.1"),)), "hosts", "gateway"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2", dhcp_end="10.0.0.9",
                    hosts=(hv.DhcpHost("52:54:00:00:00:01", "10.0.5.1"),)), "hosts", "outside the subnet"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2", dhcp_end="10.0.0.9",
                    hosts=(hv.DhcpHost("52:54:00:00:00:01", "10.0.0.20"),
                           hv.DhcpHost("52:54:00:00:00:01", "10.0.0.21"))), "hosts", "listed twice"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2", dhcp_end="10.0.0.9",
                    hosts=(hv.DhcpHost("52:54:00:00:00:01", "10.0.0.20"),
                           hv.DhcpHost("52:54:00:00:00:02", "10.0.0.20"))), "hosts", "two hosts"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", dhcp_start="10.0.0.2", dhcp_end="10.0.0.9",
                    hosts=(hv.DhcpHost("zz:54:00:00:00:01", "10.0.0.20"),)), "hosts", "six pairs"),
    (hv.NetworkSpec(name="n", subnet="10.0.0.0/24", gateway="10.0.0.1", domain="-bad-.example"), "domain",
     "DNS labels"),
])
def test_bad_specs_are_refused_with_a_clear_message(spec: hv.NetworkSpec, field: str, words: str) -> None:
    errors = spec.errors()
    assert field in errors, errors
    assert any(words in m for m in errors[field]), errors[field]
    with pytest.raises(hv.NetworkSpecInvalid) as info:
        spec.to_xml()
    assert info.value.fields == errors


# hypothesis: the spec's verdict against an independent oracle written with plain integer arithmetic
def _oracle_usable(net: ipaddress.IPv4Network, ip: ipaddress.IPv4Address) -> bool:
    first, last = int(net.network_address), int(net.broadcast_address)
    return first < int(ip) < last


subnets = st.builds(lambda a, p: ipaddress.IPv4Network(f"{ipaddress.IPv4Address(a)}/{p}", strict=False),
                    st.sampled_from([0x0A000000, 0xAC100000, 0xC0A80000]).flatmap(
                        lambda base: st.integers(base, base + 0xFFFFF)),
                    st.integers(16, 30))


@settings(max_examples=300, deadline=None)
@given(net=subnets, offsets=st.lists(st.integers(-8, 70000), min_size=4, max_size=4))
def test_range_and_static_ip_rules_match_the_oracle(net: ipaddress.IPv4Network, offsets: list[int]) -> None:
    base = int(net.network_address)
    gw, start, end, static = (ipaddress.IPv4Address(max(0, base + o)) for o in offsets)
    spec = hv.NetworkSpec(name="n", subnet=str(net), gateway=str(gw), dhcp_start=str(start), dhcp_end=str(end),
                          hosts=(hv.DhcpHost("52:54:00:00:00:01", str(static)),))
    expect_ok = (
        all(_oracle_usable(net, ip) for ip in (gw, start, end, static))
        and int(start) <= int(end) and not int(start) <= int(gw) <= int(end) and static != gw
    )
    assert (spec.errors() == {}) == expect_ok, (spec, spec.errors())


@settings(max_examples=300, deadline=None)
@given(a=subnets, b=subnets)
def test_overlap_check_matches_the_oracle(a: ipaddress.IPv4Network, b: ipaddress.IPv4Network) -> None:
    spec = hv.NetworkSpec(name="new", subnet=str(a), gateway=str(a.network_address + 1))
    other = hv.AddressUser("network", "other", b)
    overlapping = not (int(a.broadcast_address) < int(b.network_address)
                       or int(b.broadcast_address) < int(a.network_address))
    if overlapping:
        with pytest.raises(hv.NetworkSpecInvalid, match="overlaps"):
            hv.check_overlaps(spec, [other])
    else:
        hv.check_overlaps(spec, [other])


def test_overlap_names_the_culprit() -> None:
    spec = hv.NetworkSpec(name="new", subnet="192.0.2.0/25", gateway="192.0.2.1")
    with pytest.raises(hv.NetworkSpecInvalid, match="host interface eth0"):
        hv.check_overlaps(spec, [hv.AddressUser("interface", "eth0", ipaddress.IPv4Network("192.0.2.0/24"))])
    # redefining a network with its own subnet is not an overlap with itself
    hv.check_overlaps(spec, [hv.AddressUser("network", "new", ipaddress.IPv4Network("192.0.2.0/24"))])


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=6, max_size=6), upper=st.booleans(), dashes=st.booleans())
def test_mac_rules_match_the_oracle(raw: bytes, upper: bool, dashes: bool) -> None:
    text = (":" if not dashes else "-").join(f"{b:02x}" for b in raw)
    text = text.upper() if upper else text
    valid = raw[0] % 2 == 0 and any(raw)
    if valid:
        assert hv.normalize_mac(text) == ":".join(f"{b:02x}" for b in raw)
    else:
        with pytest.raises(hv.InvalidRequest):
            hv.normalize_mac(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=20))
def test_malformed_macs_are_refused(text: str) -> None:
    if re.fullmatch(r"[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}", text.strip()):
        return
    with pytest.raises(hv.InvalidRequest):
        hv.normalize_mac(text)


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=st.characters(codec="ascii"), max_size=20))
def test_bridge_names_match_the_oracle(name: str) -> None:
    ok = 1 <= len(name) <= 15 and name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name)
    errors = hv.NetworkSpec(name="n", bridge=name).errors()
    assert ("bridge" not in errors) == ok, (name, errors)


def test_random_macs_are_valid_and_local() -> None:
    macs = {hv.random_mac() for _ in range(200)}
    assert all(hv.normalize_mac(m) == m and m.startswith("52:54:00:") for m in macs)
    assert len(macs) > 150
