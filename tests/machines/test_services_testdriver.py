"""Services and selectors for VMs against libvirt's test driver: ownership, reconcile, lifecycle, errors."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from kvmweb.machines import services
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import vm_detail, vm_get, vm_list
from tests.conftest import PREFIX, spec_testdrv

pytestmark = pytest.mark.django_db


def _conn(host) -> hv.Connection:  # type: ignore[no-untyped-def]
    return hv.registry.connection(host.uri)


def test_owner_sees_own_vm_other_user_gets_404(test_host, owner, other_user, staff) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    assert [r.uuid for r in vm_list(actor=owner).rows] == [str(vm.uuid)]
    assert vm_list(actor=other_user).rows == []
    assert str(vm.uuid) in [r.uuid for r in vm_list(actor=staff).rows]
    with pytest.raises(NotFoundError):
        vm_get(actor=other_user, uuid=vm.uuid)
    with pytest.raises(NotFoundError):
        services.vm_start(actor=other_user, vm=vm)
    assert vm_get(actor=staff, uuid=vm.uuid) == vm


def test_vm_defined_outside_portal_shows_to_staff_as_unowned(test_host, owner, staff) -> None:  # type: ignore[no-untyped-def]
    dom = hv.domain_define(_conn(test_host), spec_testdrv())
    rows = {r.uuid: r for r in vm_list(actor=staff).rows}
    assert rows[dom.uuid].owner_name is None
    assert dom.uuid not in [r.uuid for r in vm_list(actor=owner).rows]
    # the built-in "test" domain of the driver is also there, unowned
    assert any(r.name == "test" for r in rows.values())


def test_vm_deleted_outside_portal_disappears(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    hv.domain_lookup(_conn(test_host), str(vm.uuid)).undefine()
    result = vm_list(actor=owner)
    assert result.rows == []
    # the list only reports the stale record; the sync (the list page and API run it) drops it
    assert [d.stale for d in result.drift] == [(str(vm.uuid),)]
    services.vm_records_sync(result.drift)
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()


def test_detail_of_vm_deleted_outside_is_404(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    hv.domain_lookup(_conn(test_host), str(vm.uuid)).undefine()
    with pytest.raises(NotFoundError):
        vm_detail(actor=owner, uuid=vm.uuid)


def test_rename_outside_portal_is_followed(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    hv.domain_lookup(_conn(test_host), str(vm.uuid)).raw.rename(vm.name + "-x", 0)
    result = vm_list(actor=owner)
    assert result.rows[0].name == vm.name + "-x"
    services.vm_records_sync(result.drift)  # what the list page and API do with what the list saw
    vm.refresh_from_db()
    assert vm.name.endswith("-x")


def test_lifecycle_and_audit(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    services.vm_start(actor=owner, vm=vm)
    assert vm_detail(actor=owner, uuid=vm.uuid).info.state is hv.DomainState.RUNNING
    with pytest.raises(ConflictError):
        services.vm_start(actor=owner, vm=vm)
    services.vm_reboot(actor=owner, vm=vm)
    services.vm_set_autostart(actor=owner, vm=vm, enabled=True)
    assert vm_detail(actor=owner, uuid=vm.uuid).info.autostart
    with pytest.raises(ConflictError, match="force it off first"):
        services.vm_delete(actor=owner, vm=vm)
    services.vm_force_off(actor=owner, vm=vm)
    with pytest.raises(ConflictError):
        services.vm_force_off(actor=owner, vm=vm)
    services.vm_delete(actor=owner, vm=vm)
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()
    actions = list(AuditEntry.objects.filter(actor=owner).order_by("created").values_list("action", "ok"))
    assert ("vm.start", True) in actions and ("vm.start", False) in actions
    assert actions[-1] == ("vm.delete", True)


def test_filters(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    a = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(name=f"{PREFIX}alpha"))
    services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(name=f"{PREFIX}beta"))
    services.vm_start(actor=owner, vm=a)
    assert [r.name for r in vm_list(actor=owner, name="ALP").rows] == [f"{PREFIX}alpha"]
    assert [r.name for r in vm_list(actor=owner, state="shutoff").rows] == [f"{PREFIX}beta"]
    assert [r.name for r in vm_list(actor=owner, state="running").rows] == [f"{PREFIX}alpha"]
    assert vm_list(actor=owner, host_id=test_host.pk + 999).rows == []


def test_define_refuses_duplicate_names_and_strangers(test_host, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    spec = spec_testdrv()
    services.vm_define(actor=owner, host=test_host, doc=spec)
    with pytest.raises(ConflictError):
        services.vm_define(actor=owner, host=test_host, doc=spec)
    with pytest.raises(PermissionDeniedError):
        services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(), owner=other_user)


def test_unreachable_host_is_reported_not_raised(db, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host

    Host.objects.create(name="gone", uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    result = vm_list(actor=owner)
    assert [h.name for h, _ in result.unavailable] == ["gone"]
    assert "does not answer" in result.unavailable[0][1] or "Cannot connect" in result.unavailable[0][1]
