"""Audit entries (and console sessions, part of the same trail) are append-only: no path of the portal changes or
deletes one — not the model, not its QuerySets, not the admin, not the API — while deleting a user or a VM still
works and leaves the entries (with the actor's name) in place."""
from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb.audit.models import AppendOnlyError, AuditEntry
from kvmweb.audit.services import audit_record
from kvmweb.console.models import ConsoleSession
from kvmweb.console.services import console_session_end, console_session_start
from kvmweb.machines import services
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(owner):  # type: ignore[no-untyped-def]
    return audit_record(actor=owner, action="vm.start", target_type="vm",
                        target="web 3b1f6a52-7c2e-4d52-9a11-0c7b0a1e2f30", detail="as it happened")


def _unchanged(entry: AuditEntry) -> None:
    fresh = AuditEntry.objects.get(pk=entry.pk)
    assert (fresh.action, fresh.detail, fresh.ok, fresh.actor_name) == ("vm.start", "as it happened", True, "alice")


def test_entries_record_the_vm_and_the_actors_name(entry) -> None:  # type: ignore[no-untyped-def]
    assert entry.target_id == "3b1f6a52-7c2e-4d52-9a11-0c7b0a1e2f30"
    assert entry.actor_name == "alice" and entry.who == "alice"


def test_the_model_refuses_to_change_or_delete_an_entry(entry) -> None:  # type: ignore[no-untyped-def]
    entry.detail = "rewritten"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.save(update_fields=["detail"])
    with pytest.raises(AppendOnlyError):
        entry.delete()
    _unchanged(entry)


@pytest.mark.parametrize("how", ["update", "delete", "bulk_update", "all_delete", "update_or_create"])
def test_querysets_refuse_to_change_or_delete(entry, how: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AppendOnlyError):
        if how == "update":
            AuditEntry.objects.filter(pk=entry.pk).update(detail="rewritten")
        elif how == "delete":
            AuditEntry.objects.filter(pk=entry.pk).delete()
        elif how == "bulk_update":
            entry.detail = "rewritten"
            AuditEntry.objects.bulk_update([entry], ["detail"])
        elif how == "all_delete":
            AuditEntry.objects.all().delete()
        else:
            AuditEntry.objects.update_or_create(pk=entry.pk, defaults={"detail": "rewritten"})
    _unchanged(entry)


def test_the_admin_is_read_only_and_offers_no_delete(entry, staff) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff)
    listing = client.get("/admin/audit/auditentry/")
    assert listing.status_code == 200
    assert "delete_selected" not in listing.content.decode()
    # the bulk action, posted anyway, deletes nothing
    client.post("/admin/audit/auditentry/", {"action": "delete_selected", "_selected_action": [entry.pk],
                                              "post": "yes"})
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get(f"/admin/audit/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="detail"' not in page.content.decode()  # shown, not editable
    client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"detail": "rewritten", "action": "x"})
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    _unchanged(entry)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_api_only_reads_the_activity(entry, staff, method: str) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_authenticate(staff)
    assert api.get("/api/v1/activity/").json()["results"][0]["id"] == entry.pk
    for url in ("/api/v1/activity/", f"/api/v1/activity/{entry.pk}/"):
        response = getattr(api, method)(url, {"detail": "rewritten"}, format="json")
        assert response.status_code in (404, 405), (url, response.status_code)
    _unchanged(entry)


def test_deleting_the_user_and_the_vm_keeps_the_entries(owner, test_host, django_user_model) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    services.vm_start(actor=owner, vm=vm)
    services.vm_force_off(actor=owner, vm=vm)
    services.vm_delete(actor=owner, vm=vm)
    mine = AuditEntry.objects.filter(target_id=str(vm.uuid))
    assert list(mine.order_by("pk").values_list("action", flat=True)) == [
        "vm.define", "vm.start", "vm.force_off", "vm.delete"]
    owner.delete()  # SET_NULL: the entries stay, with the name the actor had
    assert not django_user_model.objects.filter(username="alice").exists()
    assert mine.count() == 4
    assert {(e.actor_id, e.actor_name, e.who) for e in mine} == {(None, "alice", "alice")}


def test_console_sessions_are_closed_once_and_never_changed_or_deleted(owner, test_host, staff) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    session = console_session_start(user=owner, vm=vm, client="127.0.0.1")
    console_session_end(session=session, reason="closed by the browser")
    closed = ConsoleSession.objects.get(pk=session.pk)
    assert closed.ended is not None and closed.end_reason == "closed by the browser"
    with pytest.raises(AppendOnlyError):  # a session ends once
        console_session_end(session=closed, reason="again")
    closed.client = "10.0.0.1"
    with pytest.raises(AppendOnlyError):
        closed.save()
    with pytest.raises(AppendOnlyError):
        closed.delete()
    with pytest.raises(AppendOnlyError):
        ConsoleSession.objects.filter(pk=session.pk).update(client="10.0.0.1")
    with pytest.raises(AppendOnlyError):
        ConsoleSession.objects.all().delete()
    client = Client()
    client.force_login(staff)
    assert "delete_selected" not in client.get("/admin/console/consolesession/").content.decode()
    assert client.post(f"/admin/console/consolesession/{session.pk}/delete/", {"post": "yes"}).status_code == 403
    fresh = ConsoleSession.objects.get(pk=session.pk)
    assert (fresh.client, fresh.end_reason) == ("127.0.0.1", "closed by the browser")
    services.vm_delete(actor=owner, vm=vm)  # deleting the VM keeps its console sessions
    assert ConsoleSession.objects.get(pk=session.pk).vm_id is None
