"""Networks and NICs against qemu:///system, every step cross-checked with virsh.

Safety: the only networks started here are isolated (no <forward>) with bridges of our own; NAT and routed
networks are defined, dumped and undefined, never started; libvirt's `default` network is never touched."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.core.errors import ConflictError
from kvmweb.machines.services import vm_force_off, vm_start
from kvmweb.networks import selectors, services
from tests.conftest import SYSTEM, memtest_spec, virsh
from tests.networks.conftest import net_name, short_bridge

pytestmark = [pytest.mark.real, pytest.mark.usefixtures("system_networks")]


def net_list_row(name: str) -> list[str] | None:
    """`virsh net-list --all` row of ``name``: [name, state, autostart, persistent] or None."""
    for line in virsh("net-list", "--all").splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            return parts
    return None


def net_info(name: str) -> dict[str, str]:
    info = {}
    for line in virsh("net-info", name).splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def test_isolated_network_lifecycle_matches_virsh(qemu_host, staff) -> None:  # type: ignore[no-untyped-def]
    name, bridge = net_name("iso"), short_bridge()
    services.network_define(actor=staff, host=qemu_host, spec=hv.NetworkSpec(name=name, bridge=bridge))
    assert net_list_row(name) == [name, "inactive", "no", "yes"]
    assert net_info(name)["Active"] == "no" and net_info(name)["Bridge"] == bridge

    services.network_start(actor=staff, host=qemu_host, name=name)
    assert net_list_row(name) == [name, "active", "no", "yes"]
    info = net_info(name)
    assert (info["Active"], info["Persistent"], info["Bridge"]) == ("yes", "yes", bridge)
    portal = selectors.network_detail(actor=staff, host_id=qemu_host.pk, name=name)
    assert (portal.info.active, portal.info.bridge, portal.info.uuid) == (True, bridge, info["UUID"])

    services.network_set_autostart(actor=staff, host=qemu_host, name=name, enabled=True)
    assert net_list_row(name) == [name, "active", "yes", "yes"] and net_info(name)["Autostart"] == "yes"
    services.network_set_autostart(actor=staff, host=qemu_host, name=name, enabled=False)
    assert net_info(name)["Autostart"] == "no"

    with pytest.raises(ConflictError, match="stop it first"):
        services.network_delete(actor=staff, host=qemu_host, name=name)
    assert services.network_stop(actor=staff, host=qemu_host, name=name).disconnected == ()
    assert net_list_row(name) == [name, "inactive", "no", "yes"]
    services.network_delete(actor=staff, host=qemu_host, name=name)
    assert net_list_row(name) is None
    assert net_list_row("default") is not None  # untouched


@pytest.mark.parametrize("mode", ["nat", "route"])
def test_nat_and_routed_are_defined_dumped_undefined_never_started(mode, qemu_host, staff) -> None:  # type: ignore[no-untyped-def]
    name = net_name(mode)
    third = 241 if mode == "nat" else 242
    spec = hv.NetworkSpec(
        name=name, mode=mode, subnet=f"10.{third}.7.0/24", gateway=f"10.{third}.7.1",
        dhcp_start=f"10.{third}.7.100", dhcp_end=f"10.{third}.7.199", domain="lab.example",
        hosts=(hv.DhcpHost("52:54:00:00:30:01", f"10.{third}.7.10", "db"),),
    )
    services.network_define(actor=staff, host=qemu_host, spec=spec)
    try:
        dumped = hv.NetworkSpec.from_xml(virsh("net-dumpxml", name))
        assert dumped.bridge and len(dumped.bridge) <= 15  # libvirt picked virbrN
        assert dumped == hv.NetworkSpec(**{**vars(spec), "uuid": dumped.uuid, "bridge": dumped.bridge})
        assert net_list_row(name) == [name, "inactive", "no", "yes"]
    finally:
        services.network_delete(actor=staff, host=qemu_host, name=name)
    assert net_list_row(name) is None


def test_a_failed_start_shows_libvirts_reason_and_stays_defined(qemu_host, staff) -> None:  # type: ignore[no-untyped-def]
    """A network defined outside the portal whose subnet sits on a host interface: libvirt refuses to start it."""
    conn = hv.registry.connection(SYSTEM)
    taken = next((u.network for u in hv.host_address_users(conn) if u.kind == "interface"), None)
    if taken is None:
        pytest.skip("this host has no IPv4 interface besides loopback")
    name = net_name("clash")
    hv.network_define(conn, hv.NetworkSpec(name=name, bridge=short_bridge(), subnet=str(taken),
                                           gateway=str(taken.broadcast_address - 1)))
    with pytest.raises(ConflictError) as info:
        services.network_start(actor=staff, host=qemu_host, name=name)
    assert "could not start" in info.value.detail and "in use" in info.value.detail
    assert net_list_row(name) == [name, "inactive", "no", "yes"]


def test_nic_hotplug_on_a_running_guest(qemu_host, staff, owner, real_vm) -> None:  # type: ignore[no-untyped-def]
    name = net_name("iso")
    services.network_define(actor=staff, host=qemu_host, spec=hv.NetworkSpec(name=name, bridge=short_bridge()),
                            allow_users=True)
    services.network_start(actor=staff, host=qemu_host, name=name)
    vm = real_vm(memtest_spec())
    vm_start(actor=owner, vm=vm)
    try:
        added = services.nic_attach(actor=owner, vm=vm, network=name, model="virtio")
        assert added.live
        mac = added.nic.mac
        rows = [line.split() for line in virsh("domiflist", vm.name).splitlines()]
        assert [r for r in rows if r[-1] == mac][0][1:4] == ["network", name, "virtio"]
        assert mac in virsh("domiflist", vm.name, "--inactive")  # kept for the next boot too
        nics = selectors.vm_nics(actor=owner, vm=vm).nics
        assert [(n.mac, n.source, n.link_up) for n in nics] == [(mac, name, True)]

        services.nic_set_link(actor=owner, vm=vm, mac=mac, up=False)
        assert virsh("domif-getlink", vm.name, mac).split()[-1] == "down"
        services.nic_set_link(actor=owner, vm=vm, mac=mac, up=True)
        assert virsh("domif-getlink", vm.name, mac).split()[-1] == "up"

        row = selectors.network_row(actor=owner, host_id=qemu_host.pk, name=name)
        assert [(v.name, v.macs) for v in row.vms] == [(vm.name, (mac,))]
        lost = services.network_stop(actor=staff, host=qemu_host, name=name)  # warns who loses connectivity
        assert [v.name for v in lost.disconnected] == [vm.name] and vm.name in lost.message
        services.network_start(actor=staff, host=qemu_host, name=name)

        removed = services.nic_detach(actor=owner, vm=vm, mac=mac)
        assert removed.live
        assert mac not in virsh("domiflist", vm.name, "--inactive")  # gone from the configuration at once
        if removed.pending:  # memtest86+ does not answer PCI unplug requests: the live device waits for power-off
            with pytest.raises(ConflictError, match="already requested"):
                services.nic_detach(actor=owner, vm=vm, mac=mac)
        else:
            assert mac not in virsh("domiflist", vm.name)
    finally:
        vm_force_off(actor=owner, vm=vm)
    assert mac not in virsh("domiflist", vm.name)
