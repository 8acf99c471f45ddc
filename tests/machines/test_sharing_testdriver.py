"""Sharing a VM with a user or a group, with a role: who sees it, who may do what, the audit, the refusals."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from kvmweb.access.permissions import VmAction, VmRole, vm_may, vm_role
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.machines import services
from kvmweb.machines.models import VmShare
from kvmweb.machines.selectors import vm_audience, vm_get, vm_list, vm_shares
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db


@pytest.fixture
def vm(test_host, owner):  # type: ignore[no-untyped-def]
    return services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())


@pytest.fixture
def carol(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="carol", password="carol-pass-123")


def test_a_share_gives_its_role_and_nothing_more(vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError):
        vm_get(actor=other_user, uuid=vm.uuid)
    result = services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    assert result.message == f"{vm.name} is shared with bob as viewer."
    assert vm_get(actor=other_user, uuid=vm.uuid) == vm
    assert vm_role(other_user, vm) == VmRole.VIEWER
    assert [r.uuid for r in vm_list(actor=other_user).rows] == [str(vm.uuid)]
    assert vm_list(actor=other_user).rows[0].role == VmRole.VIEWER
    with pytest.raises(PermissionDeniedError):
        services.vm_start(actor=other_user, vm=vm)
    services.vm_share(actor=owner, vm=vm, user="bob", role="operator")
    assert VmShare.objects.filter(vm=vm).count() == 1
    services.vm_start(actor=other_user, vm=vm)
    with pytest.raises(PermissionDeniedError):
        services.vm_delete(actor=other_user, vm=vm)
    with pytest.raises(PermissionDeniedError):
        services.vm_share(actor=other_user, vm=vm, user=other_user, role="manager")
    assert vm_may(other_user, vm, VmAction.OPERATE) and not vm_may(other_user, vm, VmAction.MANAGE)


def test_the_highest_role_of_user_and_groups_wins(vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    devs, ops = Group.objects.create(name="devs"), Group.objects.create(name="ops")
    other_user.groups.add(devs, ops)
    services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    services.vm_share(actor=owner, vm=vm, group="devs", role="manager")
    services.vm_share(actor=owner, vm=vm, group=ops, role="operator")
    assert vm_role(other_user, vm) == VmRole.MANAGER
    assert [r.uuid for r in vm_list(actor=other_user).rows] == [str(vm.uuid)]
    assert vm_list(actor=other_user).rows[0].role == VmRole.MANAGER
    assert [(s.kind, s.name, s.role) for s in vm_shares(actor=owner, vm=vm)] == [
        ("user", "bob", "viewer"), ("group", "devs", "manager"), ("group", "ops", "operator")]


def test_unshare_takes_the_vm_away(vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    share = services.vm_share(actor=owner, vm=vm, user=other_user, role="operator")
    services.vm_unshare(actor=owner, vm=vm, share_id=share.share_id)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        vm_get(actor=other_user, uuid=vm.uuid)
    assert vm_list(actor=other_user).rows == []
    with pytest.raises(NotFoundError):
        services.vm_unshare(actor=owner, vm=vm, share_id=share.share_id)  # type: ignore[arg-type]
    actions = list(AuditEntry.objects.filter(target__endswith=str(vm.uuid)).values_list("action", "ok", "detail")
                   .order_by("pk"))
    assert actions[-2:] == [("vm.share", True, "bob as operator"), ("vm.unshare", True, "bob (was operator)")]


@pytest.mark.parametrize("kwargs, field", [
    ({"user": "nobody", "role": "viewer"}, "user"),
    ({"group": "nogroup", "role": "viewer"}, "group"),
    ({"user": "bob", "role": "admin"}, "role"),
    ({"role": "viewer"}, "user"),
    ({"user": "bob", "group": "devs", "role": "viewer"}, "user"),
    ({"user": "alice", "role": "viewer"}, "user"),
])
def test_bad_shares_change_nothing(vm, owner, other_user, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    Group.objects.create(name="devs")
    with pytest.raises(ValidationError) as info:
        services.vm_share(actor=owner, vm=vm, **kwargs)
    assert field in info.value.fields
    assert not VmShare.objects.exists()


def test_staff_share_and_strangers_get_404(vm, staff, other_user, carol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError):
        services.vm_share(actor=carol, vm=vm, user=other_user, role="viewer")
    services.vm_share(actor=staff, vm=vm, user=other_user, role="viewer")
    with pytest.raises(NotFoundError):
        vm_shares(actor=carol, vm=vm)
    with pytest.raises(PermissionDeniedError):
        vm_shares(actor=other_user, vm=vm)


def test_audience_is_owner_shared_users_and_group_members(vm, owner, other_user, carol,  # type: ignore[no-untyped-def]
                                                           django_user_model) -> None:
    dave = django_user_model.objects.create_user(username="dave", password="x-pass-123456")
    devs = Group.objects.create(name="devs")
    carol.groups.add(devs)
    assert vm_audience(str(vm.uuid)) == [owner.pk]
    services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    services.vm_share(actor=owner, vm=vm, group=devs, role="viewer")
    assert vm_audience(str(vm.uuid)) == sorted([owner.pk, other_user.pk, carol.pk])
    assert dave.pk not in vm_audience(str(vm.uuid))
