"""Activity: the audit entries of the VMs someone may see (owned or shared) and their own actions; staff see
everything. The page /activity/, the API GET /api/v1/activity/ and the VM page's "Jobs & activity" follow it."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError
from kvmweb.jobs.services import job_create
from kvmweb.machines import services
from kvmweb.machines.selectors import activity_list, vm_activity
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(test_host, owner, other_user, staff, django_user_model):  # type: ignore[no-untyped-def]
    """alice's "shared" (shared with bob as viewer) and "private" VMs, carol's VM; each started once."""
    carol = django_user_model.objects.create_user(username="carol", password="carol-pass-123")
    shared = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    private = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    theirs = services.vm_define(actor=carol, host=test_host, doc=spec_testdrv())
    for who, vm in ((owner, shared), (owner, private), (carol, theirs)):
        services.vm_start(actor=who, vm=vm)
    share = services.vm_share(actor=owner, vm=shared, user=other_user, role="operator")
    services.vm_force_off(actor=other_user, vm=shared)  # bob's own action
    with pytest.raises(ConflictError):
        services.vm_force_off(actor=other_user, vm=shared)  # ... and a failed one
    services.vm_share(actor=owner, vm=shared, user=other_user, role="viewer")
    return {"shared": shared, "private": private, "theirs": theirs, "carol": carol, "share": share}


def _vms(entries) -> set[str]:  # type: ignore[no-untyped-def]
    return {e.target_id for e in entries}


def test_users_see_their_vms_and_their_own_actions_staff_everything(world, owner, other_user, staff) -> None:  # type: ignore[no-untyped-def]
    w = world
    uuids = {k: str(w[k].uuid) for k in ("shared", "private", "theirs")}
    assert _vms(activity_list(actor=other_user)) == {uuids["shared"]}
    assert _vms(activity_list(actor=owner)) == {uuids["shared"], uuids["private"]}
    assert _vms(activity_list(actor=w["carol"])) == {uuids["theirs"]}
    assert set(uuids.values()) <= _vms(activity_list(actor=staff))
    bobs = list(activity_list(actor=other_user).filter(actor=other_user).values_list("action", "ok"))
    assert ("vm.force_off", True) in bobs and ("vm.force_off", False) in bobs

    services.vm_unshare(actor=owner, vm=w["shared"], share_id=w["share"].share_id)
    # the VM is no longer his to see: only his own actions on it remain in his activity
    assert {e.actor_id for e in activity_list(actor=other_user)} == {other_user.pk}


def test_filters(world, owner) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.selectors import parse_activity_filters as parse

    shared = str(world["shared"].uuid)
    assert _vms(activity_list(actor=owner, filters=parse({"vm": shared}))) == {shared}
    assert {e.action for e in activity_list(actor=owner, filters=parse({"action": "vm.sha"}))} == {"vm.share"}
    assert {e.actor_name for e in activity_list(actor=owner, filters=parse({"user": "bob"}))} == {"bob"}
    assert {e.ok for e in activity_list(actor=owner, filters=parse({"ok": "false"}))} == {False}
    today = timezone.localdate().isoformat()
    assert activity_list(actor=owner, filters=parse({"since": today, "until": today})).count() == \
        activity_list(actor=owner).count()
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert not activity_list(actor=owner, filters=parse({"since": tomorrow})).exists()


@pytest.mark.parametrize("query, field", [("vm=nope", "vm"), ("ok=maybe", "ok"), ("since=yesterday", "since"),
                                           ("since=2025-02-02&until=2025-01-01", "until")])
def test_bad_filters_are_400_with_the_field(world, owner, query: str, field: str) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_authenticate(owner)
    response = api.get(f"/api/v1/activity/?{query}")
    assert response.status_code == 400 and field in response.json()["fields"]
    page = Client()
    page.force_login(owner)
    assert page.get(f"/activity/?{query}").status_code == 200  # the page says why, and shows everything


def test_api_and_page(world, owner, other_user, settings) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_authenticate(other_user)
    body = api.get("/api/v1/activity/?limit=100").json()
    assert {r["vm"] for r in body["results"]} == {str(world["shared"].uuid)}
    assert body["count"] == len(body["results"])
    first = body["results"][0]
    assert set(first) == {"id", "created", "user", "action", "target_type", "target", "vm", "host", "ok", "detail"}

    settings.KVMWEB_PAGE_SIZE = 2
    client = Client()
    client.force_login(owner)
    page = client.get("/activity/")
    html = page.content.decode()
    assert page.status_code == 200 and 'href="/activity/"' in html  # the nav link
    total = activity_list(actor=owner).count()
    assert f"Page 1 of {-(-total // 2)}" in html
    assert world["theirs"].name not in html
    second = client.get("/activity/?page=2").content.decode()
    assert "Page 2 of" in second
    client.force_login(other_user)
    html = client.get("/activity/?page=1").content.decode() + client.get("/activity/?page=2").content.decode()
    assert world["private"].name not in html and world["theirs"].name not in html


def test_vm_page_activity_follows_the_same_rule(world, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    vm = world["shared"]
    mine = job_create(actor=owner, kind="jobs.selftest", title="alice's", target_type="vm", target=str(vm.uuid))
    seen = vm_activity(actor=other_user, vm=vm)
    assert {e.target_id for e in seen.entries} == {str(vm.uuid)}
    assert mine not in seen.jobs  # jobs stay their starter's (and staff's)
    assert mine in vm_activity(actor=owner, vm=vm).jobs
    assert AuditEntry.objects.filter(target_id=str(vm.uuid), action="vm.share").exists()
