"""Network services against libvirt's in-process test driver: permissions, validation before libvirt, verbs."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.machines.services import vm_define
from kvmweb.networks import selectors, services
from kvmweb.networks.models import AllowedNetwork
from tests.conftest import spec_testdrv
from tests.networks.conftest import TESTDRV, net_name, short_bridge

pytestmark = pytest.mark.usefixtures("testdrv_networks")


def names(conn_uri: str = TESTDRV) -> dict[str, hv.NetworkSummary]:
    return {n.name: n for n in hv.network_list(hv.registry.connection(conn_uri))}


def isolated(**kw) -> hv.NetworkSpec:  # type: ignore[no-untyped-def]
    kw.setdefault("name", net_name())
    kw.setdefault("bridge", short_bridge())
    return hv.NetworkSpec(**kw)


def test_staff_define_start_autostart_stop_delete(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    spec = isolated(subnet="10.231.0.0/24", gateway="10.231.0.1", dhcp_start="10.231.0.10", dhcp_end="10.231.0.20")
    services.network_define(actor=staff, host=test_host, spec=spec)
    row = names()[spec.name]
    assert (row.active, row.persistent, row.autostart, row.spec.subnet) == (False, True, False, "10.231.0.0/24")
    services.network_start(actor=staff, host=test_host, name=spec.name)
    services.network_set_autostart(actor=staff, host=test_host, name=spec.name, enabled=True)
    row = names()[spec.name]
    assert (row.active, row.autostart) == (True, True)
    with pytest.raises(ConflictError, match="already active"):
        services.network_start(actor=staff, host=test_host, name=spec.name)
    with pytest.raises(ConflictError, match="stop it first"):
        services.network_delete(actor=staff, host=test_host, name=spec.name)
    assert services.network_stop(actor=staff, host=test_host, name=spec.name).disconnected == ()
    services.network_delete(actor=staff, host=test_host, name=spec.name)
    assert spec.name not in names()
    actions = list(AuditEntry.objects.filter(target=spec.name).values_list("action", "ok"))
    assert ("network.define", True) in actions and ("network.undefine", True) in actions
    assert ("network.start", False) in actions and ("network.undefine", False) in actions


@pytest.mark.parametrize("verb", ["define", "start", "stop", "delete", "autostart", "allow"])
def test_users_cannot_manage_networks(verb: str, owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    spec = isolated()
    services.network_define(actor=staff, host=test_host, spec=spec)
    calls = {
        "define": lambda: services.network_define(actor=owner, host=test_host, spec=isolated()),
        "start": lambda: services.network_start(actor=owner, host=test_host, name=spec.name),
        "stop": lambda: services.network_stop(actor=owner, host=test_host, name=spec.name),
        "delete": lambda: services.network_delete(actor=owner, host=test_host, name=spec.name),
        "autostart": lambda: services.network_set_autostart(actor=owner, host=test_host, name=spec.name,
                                                            enabled=True),
        "allow": lambda: services.network_set_allowed(actor=owner, host=test_host, name=spec.name, allowed=True),
    }
    with pytest.raises(PermissionDeniedError):
        calls[verb]()
    row = names()[spec.name]
    assert (row.active, row.autostart) == (False, False)
    assert not AllowedNetwork.objects.exists()


@pytest.mark.parametrize("spec, field, words", [
    (hv.NetworkSpec(name="default"), "name", "already exists"),
    (hv.NetworkSpec(name=f"{net_name()}", subnet="192.168.122.0/25", gateway="192.168.122.1"), "subnet",
     "overlaps 192.168.122.0/24 of the network default"),
    (hv.NetworkSpec(name=f"{net_name()}", subnet="192.168.0.0/16", gateway="192.168.200.1"), "subnet",
     "overlaps"),
    (hv.NetworkSpec(name=f"{net_name()}", subnet="192.168.0.128/25", gateway="192.168.0.129"), "subnet",
     "host interface eth1"),
    (hv.NetworkSpec(name=f"{net_name()}", bridge="virbr0"), "bridge", "belongs to the network default"),
    (hv.NetworkSpec(name=f"{net_name()}", bridge="x" * 16), "bridge", "at most 15"),
    (hv.NetworkSpec(name="bad name"), "name", "Invalid network name"),
    (hv.NetworkSpec(name=f"{net_name()}", mode="bridge", bridge="br-none"), "bridge", "no interface named br-none"),
])
def test_bad_input_is_refused_before_libvirt(spec, field, words, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    before = set(names())
    with pytest.raises(ValidationError) as info:
        services.network_define(actor=staff, host=test_host, spec=spec)
    assert field in info.value.fields and words in " ".join(info.value.fields[field]), info.value.fields
    assert set(names()) == before


def test_users_see_allowed_networks_only(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    open_spec, closed_spec = isolated(), isolated()
    services.network_define(actor=staff, host=test_host, spec=open_spec, allow_users=True)
    services.network_define(actor=staff, host=test_host, spec=closed_spec)
    visible = {r.name for r in selectors.network_list(actor=owner).rows}
    assert open_spec.name in visible and closed_spec.name not in visible and "default" not in visible
    assert {open_spec.name, closed_spec.name, "default"} <= {r.name for r in selectors.network_list(actor=staff).rows}
    assert selectors.network_row(actor=owner, host_id=test_host.pk, name=open_spec.name).allowed
    with pytest.raises(NotFoundError):
        selectors.network_row(actor=owner, host_id=test_host.pk, name=closed_spec.name)
    detail = selectors.network_detail(actor=owner, host_id=test_host.pk, name=open_spec.name)
    assert detail.xml is None  # the XML is for staff
    assert selectors.network_detail(actor=staff, host_id=test_host.pk, name=open_spec.name).xml
    services.network_set_allowed(actor=staff, host=test_host, name=open_spec.name, allowed=False)
    assert open_spec.name not in {r.name for r in selectors.network_list(actor=owner).rows}


def test_users_attach_only_to_allowed_networks_and_own_vms(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    spec = isolated()
    services.network_define(actor=staff, host=test_host, spec=spec)
    with pytest.raises(ValidationError) as info:
        services.nic_attach(actor=owner, vm=vm, network=spec.name)
    assert "may not attach" in info.value.fields["network"][0]
    with pytest.raises(NotFoundError):
        services.nic_attach(actor=other_user, vm=vm, network=spec.name)
    with pytest.raises(NotFoundError):
        services.nic_detach(actor=other_user, vm=vm, mac="52:54:00:00:00:01")
    with pytest.raises(NotFoundError):
        services.nic_set_link(actor=other_user, vm=vm, mac="52:54:00:00:00:01", up=False)
    nics = selectors.vm_nics(actor=owner, vm=vm)
    assert spec.name not in {n.name for n in nics.networks}
    services.network_set_allowed(actor=staff, host=test_host, name=spec.name, allowed=True)
    assert spec.name in {n.name for n in selectors.vm_nics(actor=owner, vm=vm).networks}


@pytest.mark.parametrize("mac, words", [
    ("52:54:00:zz:00:01", "six pairs"),
    ("01:00:5e:00:00:01", "multicast"),
    ("aa:bb:cc:dd:ee:ff", "already used"),  # the test driver's own domain "test" has this MAC
])
def test_bad_or_duplicate_macs_are_refused(mac, words, owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    spec = isolated()
    services.network_define(actor=staff, host=test_host, spec=spec, allow_users=True)
    with pytest.raises(ValidationError) as info:
        services.nic_attach(actor=owner, vm=vm, network=spec.name, mac=mac)
    assert words in info.value.fields["mac"][0]
    with pytest.raises(ValidationError, match="model"):
        services.nic_attach(actor=owner, vm=vm, network=spec.name, model="ne2k")


def test_nic_removal_of_unknown_mac_is_a_clear_404(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    with pytest.raises(NotFoundError, match="no network interface with MAC 52:54:00:00:00:99"):
        services.nic_detach(actor=owner, vm=vm, mac="52:54:00:00:00:99")
    with pytest.raises(ValidationError):
        services.nic_detach(actor=owner, vm=vm, mac="not-a-mac")


def test_attached_vms_are_listed_for_staff(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    row = selectors.network_row(actor=staff, host_id=test_host.pk, name="default")
    assert "test" in {v.name for v in row.vms}  # the test driver's own domain has a NIC on "default"
    assert row.vms[0].macs == ("aa:bb:cc:dd:ee:ff",)


def test_bridge_mode_joins_an_existing_host_interface(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    spec = hv.NetworkSpec(name=net_name(), mode="bridge", bridge="eth1")  # the test driver's one interface
    services.network_define(actor=staff, host=test_host, spec=spec)
    row = names()[spec.name]
    assert (row.mode, row.bridge, row.spec.subnet) == ("bridge", "eth1", None)
