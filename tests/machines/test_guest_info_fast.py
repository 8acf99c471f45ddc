"""Guest information: libvirt's answers (recorded from a Debian 12 guest running qemu-guest-agent) parsed into
``hv.GuestInfo``; ``hv.guest_info`` driven through a stand-in domain whose agent answers or fails the way
libvirt does; the test driver's answer (it has no agent API, only DHCP-lease-like addresses); the selector's
cache, the lazy VM page part and ``GET /api/v1/vms/{uuid}/guest/``.

No guest with a real agent runs on the test machine (building a cloud image with qemu-guest-agent takes long), so
the agent side is checked on recorded data here and on a guest without an agent in test_guest_info_real.py.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from typing import Any

import libvirt
import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.hypervisor.errors import HypervisorError
from kvmweb.hypervisor.guest import GUEST_INFO_TYPES, agent_reason
from kvmweb.machines import services
from kvmweb.machines.selectors import VmGuest, vm_guest_info
from tests.conftest import spec_testdrv

# What libvirt-python's dom.guestInfo(OS | HOSTNAME | FILESYSTEM) returns for a Debian 12 guest (libvirt 9.0,
# qemu-guest-agent 7.2): the key names of virDomainGetGuestInfo (see `virsh guestinfo`).
DEBIAN_GUEST_INFO: dict[str, Any] = {
    "os.id": "debian",
    "os.name": "Debian GNU/Linux",
    "os.pretty-name": "Debian GNU/Linux 12 (bookworm)",
    "os.version": "12 (bookworm)",
    "os.version-id": "12",
    "os.kernel-release": "6.1.0-13-amd64",
    "os.kernel-version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)",
    "os.machine": "x86_64",
    "hostname": "bookworm-web",
    "fs.count": 3,
    "fs.0.name": "vda1",
    "fs.0.mountpoint": "/",
    "fs.0.fstype": "ext4",
    "fs.0.total-bytes": 20957446144,
    "fs.0.used-bytes": 1828552704,
    "fs.0.disk.count": 1,
    "fs.0.disk.0.alias": "vda",
    "fs.0.disk.0.device": "/dev/vda1",
    "fs.1.name": "vda15",
    "fs.1.mountpoint": "/boot/efi",
    "fs.1.fstype": "vfat",
    "fs.1.total-bytes": 129718272,
    "fs.1.used-bytes": 6102016,
    "fs.1.disk.count": 1,
    "fs.1.disk.0.alias": "vda",
    "fs.1.disk.0.device": "/dev/vda15",
    "fs.2.name": "vdb",
    "fs.2.mountpoint": "/srv/data",
    "fs.2.fstype": "xfs",  # an agent that reported no usage for it
    "fs.2.disk.count": 1,
    "fs.2.disk.0.alias": "vdb",
    "fs.2.disk.0.device": "/dev/vdb",
}

# dom.interfaceAddresses(VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT) of the same guest: the guest's names, loopback too.
DEBIAN_AGENT_ADDRESSES: dict[str, Any] = {
    "lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [
        {"type": libvirt.VIR_IP_ADDR_TYPE_IPV4, "addr": "127.0.0.1", "prefix": 8},
        {"type": libvirt.VIR_IP_ADDR_TYPE_IPV6, "addr": "::1", "prefix": 128}]},
    "enp1s0": {"hwaddr": "52:54:00:3e:1a:7c", "addrs": [
        {"type": libvirt.VIR_IP_ADDR_TYPE_IPV6, "addr": "fe80::5054:ff:fe3e:1a7c", "prefix": 64},
        {"type": libvirt.VIR_IP_ADDR_TYPE_IPV4, "addr": "192.168.122.57", "prefix": 24}]},
    "enp7s0": {"hwaddr": "52:54:00:9a:00:02", "addrs": []},  # up, no address yet
}

# dom.interfaceAddresses(VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE): the host's tap device, libvirt's dnsmasq lease.
LEASES: dict[str, Any] = {
    "vnet3": {"hwaddr": "52:54:00:3E:1A:7C", "addrs": [
        {"type": libvirt.VIR_IP_ADDR_TYPE_IPV4, "addr": "192.168.122.57", "prefix": 24}]},
}


# ------------------------------------------------------------------------------------------------ parsing
def test_recorded_debian_guest_info_parses() -> None:
    info = hv.parse_guest_info(DEBIAN_GUEST_INFO)
    assert info.agent is True and info.error == ""
    assert info.os_name == "Debian GNU/Linux 12 (bookworm)" and info.os_id == "debian"
    assert info.os_version == "12 (bookworm)" and info.kernel == "6.1.0-13-amd64" and info.machine == "x86_64"
    assert info.hostname == "bookworm-web"
    assert [(f.mountpoint, f.type, f.device) for f in info.filesystems] == [
        ("/", "ext4", "vda1"), ("/boot/efi", "vfat", "vda15"), ("/srv/data", "xfs", "vdb")]
    root, efi, data = info.filesystems
    assert (root.used_bytes, root.total_bytes) == (1828552704, 20957446144)
    assert root.used_pct == pytest.approx(8.725, abs=0.01)
    assert (efi.used_bytes, efi.total_bytes) == (6102016, 129718272)
    assert (data.used_bytes, data.total_bytes, data.used_pct) == (None, None, None)


def test_partial_answers_parse_without_inventing() -> None:
    """An agent that answers only some questions (an old one, or Windows without a pretty name)."""
    info = hv.parse_guest_info({"os.name": "Microsoft Windows", "os.version-id": "2019", "fs.count": 2,
                                "fs.0.mountpoint": "C:\\", "fs.0.fstype": "NTFS", "fs.0.used-bytes": "not-a-number",
                                "fs.1.fstype": "vfat"})  # fs.1 has no mount point: left out
    assert (info.os_name, info.os_version, info.kernel, info.hostname) == ("Microsoft Windows", "2019", "", "")
    assert [(f.mountpoint, f.used_bytes) for f in info.filesystems] == [("C:\\", None)]
    assert hv.parse_guest_info({}) == hv.GuestInfo(agent=True)


def test_agent_interfaces_parse_ipv4_first_without_loopback() -> None:
    nics = hv.parse_interfaces(DEBIAN_AGENT_ADDRESSES, "agent")
    assert [(n.name, n.mac, n.addresses, n.source) for n in nics] == [
        ("enp1s0", "52:54:00:3e:1a:7c", ("192.168.122.57/24", "fe80::5054:ff:fe3e:1a7c/64"), "agent"),
        ("enp7s0", "52:54:00:9a:00:02", (), "agent"),
    ]


def test_lease_interfaces_parse() -> None:
    nics = hv.parse_interfaces(LEASES, "lease")
    assert [(n.name, n.mac, n.addresses, n.source) for n in nics] == [
        ("vnet3", "52:54:00:3e:1a:7c", ("192.168.122.57/24",), "lease")]
    assert hv.parse_interfaces(None, "lease") == () and hv.parse_interfaces({}, "agent") == ()
    info = hv.GuestInfo(agent=False, interfaces=nics)
    assert info.addresses == ("192.168.122.57",)


@pytest.mark.parametrize(("code", "message", "words"), [
    (libvirt.VIR_ERR_NO_SUPPORT, "this function is not supported by the connection driver: virDomainGetGuestInfo",
     "cannot ask a guest agent"),
    (libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured", "no guest-agent channel"),
    (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding: QEMU guest agent is not connected",
     "not installed or not running in the guest"),
    (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding: Guest agent not available for now",
     "did not answer in time"),
    (libvirt.VIR_ERR_OPERATION_INVALID, "domain is not running", "not running"),
    (libvirt.VIR_ERR_INTERNAL_ERROR, "unexpected reply", "gave nothing: unexpected reply"),
])
def test_agent_failures_in_words(code: int, message: str, words: str) -> None:
    assert words in agent_reason(HypervisorError(message, libvirt_code=code))


# ------------------------------------------------------------------------------------------------ the flow
class FakeLibvirtError(libvirt.libvirtError):  # type: ignore[misc]
    """A libvirt error with the code libvirt gives (libvirtError reads the last error of the C library)."""

    def __init__(self, code: int, message: str) -> None:
        Exception.__init__(self, message)
        self.err = (code, libvirt.VIR_FROM_QEMU, message, libvirt.VIR_ERR_ERROR, None, None, None, 0, 0)


class FakeVirDomain:
    """Stands in for a virDomain whose agent answers ``info``/``addresses`` or raises ``fail``."""

    def __init__(self, *, info: dict[str, Any] | None = None, addresses: dict[str, Any] | None = None,
                 fail: Exception | None = None, fail_addresses: Exception | None = None) -> None:
        self.info, self.addresses, self.fail, self.fail_addresses = info, addresses, fail, fail_addresses
        self.calls: list[tuple[str, int]] = []

    def agentSetResponseTimeout(self, seconds: int, flags: int) -> int:  # noqa: N802 - libvirt's name
        self.calls.append(("timeout", seconds))
        return 0

    def guestInfo(self, types: int, flags: int) -> dict[str, Any]:  # noqa: N802
        self.calls.append(("guestInfo", types))
        if self.fail:
            raise self.fail
        return dict(self.info or {})

    def interfaceAddresses(self, source: int, flags: int) -> dict[str, Any]:  # noqa: N802
        self.calls.append(("interfaceAddresses", source))
        if source == libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT:
            if self.fail or self.fail_addresses:
                raise self.fail or self.fail_addresses  # type: ignore[misc]
            return dict(self.addresses or {})
        return dict(LEASES)


class FakeDomain:
    """The parts of hv.Domain that guest_info uses: the state, the raw domain and the counting connection."""

    name = "fake"

    def __init__(self, raw: FakeVirDomain, state: hv.DomainState = hv.DomainState.RUNNING) -> None:
        self.raw, self._state = raw, state
        self.conn = hv.Connection("test:///guest-info-fake")  # never opened: run() only counts and translates

    def state(self) -> hv.DomainState:
        return self._state


AGENT = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT
LEASE = libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE


def test_an_answering_agent_gives_everything_after_setting_the_timeout() -> None:
    raw = FakeVirDomain(info=DEBIAN_GUEST_INFO, addresses=DEBIAN_AGENT_ADDRESSES)
    dom = FakeDomain(raw)
    info = hv.guest_info(dom, timeout_s=3)  # type: ignore[arg-type]
    assert raw.calls == [("timeout", 3), ("guestInfo", GUEST_INFO_TYPES), ("interfaceAddresses", AGENT)]
    assert GUEST_INFO_TYPES == (libvirt.VIR_DOMAIN_GUEST_INFO_OS | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME
                                | libvirt.VIR_DOMAIN_GUEST_INFO_FILESYSTEM)
    assert info.agent and info.error == "" and info.hostname == "bookworm-web"
    assert info.os_name == "Debian GNU/Linux 12 (bookworm)" and len(info.filesystems) == 3
    assert [(n.name, n.source) for n in info.interfaces] == [("enp1s0", "agent"), ("enp7s0", "agent")]
    assert dom.conn.calls == 3  # every call counted by the connection


def test_an_unconnected_agent_falls_back_to_leases_and_says_why() -> None:
    raw = FakeVirDomain(fail=FakeLibvirtError(libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
                                              "Guest agent is not responding: QEMU guest agent is not connected"))
    info = hv.guest_info(FakeDomain(raw))  # type: ignore[arg-type]
    assert raw.calls == [("timeout", 2), ("guestInfo", GUEST_INFO_TYPES), ("interfaceAddresses", LEASE)]
    assert not info.agent and info.running and "not installed or not running" in info.error
    assert [(n.name, n.addresses, n.source) for n in info.interfaces] == [("vnet3", ("192.168.122.57/24",), "lease")]
    assert info.os_name == info.hostname == "" and info.filesystems == ()


def test_agent_info_without_agent_addresses_keeps_the_info_and_uses_leases() -> None:
    raw = FakeVirDomain(info=DEBIAN_GUEST_INFO, fail_addresses=FakeLibvirtError(
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED, "the agent does not support guest-network-get-interfaces"))
    info = hv.guest_info(FakeDomain(raw))  # type: ignore[arg-type]
    assert raw.calls[-2:] == [("interfaceAddresses", AGENT), ("interfaceAddresses", LEASE)]
    assert info.agent and info.hostname == "bookworm-web"
    assert [n.source for n in info.interfaces] == ["lease"]


def test_shut_off_and_paused_vms_never_ask_the_agent() -> None:
    raw = FakeVirDomain(info=DEBIAN_GUEST_INFO)
    off = hv.guest_info(FakeDomain(raw, hv.DomainState.SHUTOFF))  # type: ignore[arg-type]
    assert raw.calls == [] and off == hv.GuestInfo(agent=False, running=False, agent_asked=False,
                                                   error="The VM is not running.")
    paused = hv.guest_info(FakeDomain(raw, hv.DomainState.PAUSED))  # type: ignore[arg-type]
    assert raw.calls == [("interfaceAddresses", LEASE)]
    assert not paused.agent and not paused.agent_asked and "paused" in paused.error and paused.interfaces


def test_a_broken_host_is_an_error_not_an_absent_agent() -> None:
    raw = FakeVirDomain(fail=FakeLibvirtError(libvirt.VIR_ERR_NO_DOMAIN, "Domain not found"))
    with pytest.raises(hv.DomainNotFound):
        hv.guest_info(FakeDomain(raw))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------ test driver
@pytest.fixture
def vm(owner, test_host):  # type: ignore[no-untyped-def]
    return services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(
        devices=(hv.Interface.new(network="default", mac="52:54:00:4d:00:01"),)))


def _calls() -> int:
    return hv.registry.connection("test:///default").calls


@pytest.mark.django_db
def test_the_test_driver_has_no_agent_api_and_answers_lease_like_addresses(owner, vm) -> None:  # type: ignore[no-untyped-def]
    """What libvirt's test driver answers: virDomainGetGuestInfo is not supported; interfaceAddresses answers a
    made-up address per NIC whatever the source."""
    off = vm_guest_info(actor=owner, vm=vm).info
    assert not off.agent and not off.running and off.error == "The VM is not running."
    services.vm_start(actor=owner, vm=vm)
    info = vm_guest_info(actor=owner, vm=vm).info
    assert not info.agent and info.running and "cannot ask a guest agent" in info.error
    assert [(n.mac, n.source) for n in info.interfaces] == [("52:54:00:4d:00:01", "lease")]
    # an address of the test driver's network, which other tests may redefine: only its form is the driver's
    assert info.interfaces[0].addresses and all(ipaddress.ip_interface(a) for a in info.interfaces[0].addresses)


@pytest.mark.django_db
def test_answers_are_cached_per_run_of_the_vm(owner, staff, vm, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_GUEST_INFO_SECONDS = 30
    before = _calls()
    vm_guest_info(actor=owner, vm=vm)
    vm_guest_info(actor=owner, vm=vm)
    assert _calls() - before == 4  # not running: lookup + state each time, nothing kept, so a start is seen at once
    services.vm_start(actor=owner, vm=vm)
    before = _calls()
    first = vm_guest_info(actor=owner, vm=vm)
    assert _calls() - before == 5  # lookup, state, agent timeout, guest info (refused), leases
    before = _calls()
    again = vm_guest_info(actor=staff, vm=vm)  # whoever asks
    assert again == first and isinstance(again, VmGuest)
    assert _calls() - before == 1  # only the lookup, which tells the run apart
    # a new run (forced off, started again: a new domain id) is read afresh
    services.vm_force_off(actor=owner, vm=vm)
    assert vm_guest_info(actor=owner, vm=vm).info.error == "The VM is not running."
    services.vm_start(actor=owner, vm=vm)
    before = _calls()
    fresh = vm_guest_info(actor=owner, vm=vm)
    assert fresh.read_at > first.read_at and _calls() - before == 5


@pytest.mark.django_db
def test_page_is_lazy_part_and_api_answer(owner, other_user, vm) -> None:  # type: ignore[no-untyped-def]
    services.vm_start(actor=owner, vm=vm)
    client = Client()
    client.force_login(owner)
    page = client.get(f"/vms/{vm.uuid}/").content.decode()
    assert f'data-vm-lazy data-part-url="/vms/{vm.uuid}/part/guest/"' in page
    assert 'id="guest-loading"' in page and "cannot ask a guest agent" not in page
    part = client.get(f"/vms/{vm.uuid}/part/guest/").content.decode()
    assert 'id="guest-loading"' not in part and "cannot ask a guest agent" in part and "DHCP lease" in part
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(f"/api/v1/vms/{vm.uuid}/guest/").json()
    assert body["agent"] is False and body["running"] is True and "cannot ask a guest agent" in body["error"]
    assert [(n["mac"], n["source"]) for n in body["interfaces"]] == [("52:54:00:4d:00:01", "lease")]
    assert dt.datetime.fromisoformat(body["read_at"])
    api.force_authenticate(other_user)
    assert api.get(f"/api/v1/vms/{vm.uuid}/guest/").status_code == 404
    other = Client()
    other.force_login(other_user)
    assert other.get(f"/vms/{vm.uuid}/part/guest/").status_code == 404


@pytest.mark.django_db
def test_an_answering_agent_on_the_page_and_in_the_api(owner, vm, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The recorded Debian answers through the selector, the part's template and the serializer."""
    recorded = hv.parse_guest_info(DEBIAN_GUEST_INFO)
    agent = dataclasses.replace(recorded, interfaces=hv.parse_interfaces(DEBIAN_AGENT_ADDRESSES, "agent"))
    monkeypatch.setattr(hv, "guest_info", lambda dom, timeout_s=2: agent)
    client = Client()
    client.force_login(owner)
    part = client.get(f"/vms/{vm.uuid}/part/guest/").content.decode()
    for text in ("Debian GNU/Linux 12 (bookworm)", "6.1.0-13-amd64", "bookworm-web", "enp1s0", "192.168.122.57/24",
                 "fe80::5054:ff:fe3e:1a7c/64", "/boot/efi", hv.human(1828552704), hv.human(20957446144),
                 "guest agent", 'value="9"'):
        assert text in part, text
    assert "No guest agent answer" not in part and "127.0.0.1" not in part
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(f"/api/v1/vms/{vm.uuid}/guest/").json()
    assert body["agent"] is True and body["error"] == "" and body["hostname"] == "bookworm-web"
    assert body["os_id"] == "debian" and body["kernel"] == "6.1.0-13-amd64"
    assert body["filesystems"][0] == {"mountpoint": "/", "type": "ext4", "device": "vda1",
                                      "used_bytes": 1828552704, "total_bytes": 20957446144}
    assert body["interfaces"][0]["addresses"] == ["192.168.122.57/24", "fe80::5054:ff:fe3e:1a7c/64"]
