"""Bulk actions on the VM list (page and API), on libvirt's test driver: each VM its own service call, permission
check and audit row; one refusal does not stop the others; bad requests change nothing."""
from __future__ import annotations

import uuid as uuid_mod

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb.audit.models import AuditEntry
from kvmweb.machines import services
from kvmweb.machines.services import BULK_LIMIT
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db


@pytest.fixture
def three(owner, test_host):  # type: ignore[no-untyped-def]
    vms = [services.vm_define(actor=owner, host=test_host, doc=spec_testdrv()) for _ in range(3)]
    for vm in vms[:2]:
        services.vm_start(actor=owner, vm=vm)
    return vms


def test_api_force_off_each_vm_its_own_result(owner, other_user, test_host, three) -> None:  # type: ignore[no-untyped-def]
    theirs = services.vm_define(actor=other_user, host=test_host, doc=spec_testdrv())
    services.vm_start(actor=other_user, vm=theirs)
    api = APIClient()
    api.force_authenticate(owner)
    uuids = [str(vm.uuid) for vm in three] + [str(theirs.uuid)]
    r = api.post("/api/v1/vms/bulk/", {"action": "force-off", "uuids": uuids}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["action"] == "force-off" and body["detail"].startswith("force-off: 2 of 4 VMs done")
    results = {item["uuid"]: item for item in body["results"]}
    assert [item["uuid"] for item in body["results"]] == uuids  # in the order asked
    for vm in three[:2]:
        assert results[str(vm.uuid)] == {"uuid": str(vm.uuid), "name": vm.name, "ok": True,
                                         "detail": f"{vm.name} was forced off."}
    assert results[str(three[2].uuid)]["ok"] is False
    assert results[str(three[2].uuid)]["detail"] == f"{three[2].name} is already shut off."
    # another user's VM is refused as if it did not exist, and keeps running
    assert results[str(theirs.uuid)]["ok"] is False and results[str(theirs.uuid)]["name"] == ""
    assert theirs.name not in r.content.decode()
    assert api.get(f"/api/v1/vms/{theirs.uuid}/").status_code == 404
    assert services.vm_domain(theirs).state().slug == "running"
    # one audit row per VM acted on, with its outcome
    for vm, ok in zip(three, (True, True, False), strict=True):
        rows = AuditEntry.objects.filter(action="vm.force_off", target__endswith=str(vm.uuid))
        assert [row.ok for row in rows] == [ok]
    assert not AuditEntry.objects.filter(action="vm.force_off", target__endswith=str(theirs.uuid)).exists()


@pytest.mark.parametrize("body, field", [
    ({"action": "explode", "uuids": []}, "action"),
    ({"action": "start", "uuids": []}, "uuids"),
    ({"action": "start", "uuids": ["not-a-uuid"]}, "uuids"),
    ({"action": "start", "uuids": [str(uuid_mod.uuid4()) for _ in range(BULK_LIMIT + 1)]}, "uuids"),
])
def test_api_refusals_change_nothing(owner, three, body, field) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_authenticate(owner)
    before = AuditEntry.objects.count()
    r = api.post("/api/v1/vms/bulk/", body, format="json")
    assert r.status_code == 400 and r["Content-Type"].startswith("application/json")
    assert field in r.json()["fields"]
    assert AuditEntry.objects.count() == before
    assert [services.vm_domain(vm).state().slug for vm in three] == ["running", "running", "shutoff"]


def test_api_needs_login(three) -> None:  # type: ignore[no-untyped-def]
    r = APIClient().post("/api/v1/vms/bulk/", {"action": "start", "uuids": [str(three[2].uuid)]}, format="json")
    assert r.status_code in (401, 403)
    assert services.vm_domain(three[2]).state().slug == "shutoff"


def test_page_bulk_start_messages_and_back_to_the_filtered_list(owner, three) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(owner)
    r = c.post("/vms/bulk/", {"action": "start", "uuid": [str(vm.uuid) for vm in three], "next": "/vms/?state=running"},
               follow=True)
    assert r.redirect_chain == [("/vms/?state=running", 302)]
    texts = [str(m) for m in r.context["messages"]]
    assert texts[0] == "start: 1 of 3 VMs done, the others refused (see below)."
    assert f"{three[2].name}: {three[2].name} started." in texts
    assert f"{three[0].name}: {three[0].name} is already running." in texts
    assert all(services.vm_domain(vm).state().slug == "running" for vm in three)
    # an address elsewhere is not followed back
    r = c.post("/vms/bulk/", {"action": "force-off", "uuid": [str(three[0].uuid)], "next": "https://evil.example/"})
    assert r.status_code == 302 and r["Location"] == "/vms/"
    r = c.post("/vms/bulk/", {"action": "start"}, follow=True)
    assert "Choose at least one VM." in [str(m) for m in r.context["messages"]]


def test_row_action_comes_back_to_the_list(owner, three) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(owner)
    vm = three[2]
    r = c.post(f"/vms/{vm.uuid}/start/", {"next": "/vms/?name=kvm&page=1"})
    assert r.status_code == 302 and r["Location"] == "/vms/?name=kvm&page=1"
    r = c.post(f"/vms/{vm.uuid}/force-off/", {"next": "//evil.example/x"})
    assert r.status_code == 302 and r["Location"] == f"/vms/{vm.uuid}/"


def test_list_rows_actions_and_what_each_vm_is_doing(owner, three) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.jobs.models import Job

    job = Job.objects.create(kind="vm.clone", title=f"Clone {three[0].name}", target_type="vm",
                             target=str(three[0].uuid), actor=owner, state="running", progress=40)
    c = Client()
    c.force_login(owner)
    html = c.get("/vms/").content.decode()
    assert html.count('name="uuid"') == 3 and 'id="bulk-all"' in html
    assert f'data-job-id="{job.pk}"' in html and 'value="40"' in html
    # running rows offer Shut down and Force off, the shut-off one Start; thumbnails only for running rows
    assert html.count(">Force off</button>") == 2 + 1  # two rows and the bulk bar
    assert html.count("screenshot.png?thumb=1") == 2
