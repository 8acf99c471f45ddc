"""The REST API for VMs and hosts: shapes, errors as JSON with 4xx, token authentication, 503 for dead hosts."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.accounts.tokens import token_create
from kvmweb.hosts.models import Host
from kvmweb.machines import services
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db


@pytest.fixture
def vm(owner, test_host):  # type: ignore[no-untyped-def]
    return services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(vcpus=2, memory_kib=262144))


def test_list_and_detail(api, vm) -> None:  # type: ignore[no-untyped-def]
    body = api.get("/api/v1/vms/").json()
    assert body["count"] == 1 and body["unavailable_hosts"] == []
    row = body["results"][0]
    assert row == {
        "uuid": str(vm.uuid), "name": vm.name, "id": None, "state": "shutoff", "state_label": "shut off",
        "vcpus": 2, "memory_kib": 262144, "max_memory_kib": 262144, "host": "testdrv", "owner": "alice",
        "your_role": "owner", "cpu_pct": None, "mem_used_bytes": None, "mem_pct": None,
        "url": f"/api/v1/vms/{vm.uuid}/",
    }
    detail = api.get(row["url"]).json()
    assert detail["name"] == vm.name and detail["persistent"] is True and detail["autostart"] is False
    assert detail["your_role"] == "owner"
    assert detail["vnc_display"] is None and detail["block_devices"] == []


def test_actions_and_errors(api, vm) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/vms/{vm.uuid}/"
    r = api.post(url + "start/")
    assert r.status_code == 200 and r.json()["state"] == "running"
    r = api.post(url + "start/")
    assert r.status_code == 409 and r.json() == {"error": "already_running", "detail": f"{vm.name} is already running."}
    r = api.delete(url)
    assert r.status_code == 409 and r.json()["error"] == "vm_running"
    assert api.post(url + "reboot/").status_code == 200
    assert api.post(url + "shutdown/").status_code == 200  # the test driver obeys at once
    assert api.get(url).json()["state"] == "shutoff"
    assert api.post(url + "force-off/").status_code == 409
    r = api.post(url + "autostart/", {"enabled": "maybe"}, format="json")
    assert r.status_code == 400 and r.json()["error"] == "invalid" and "enabled" in r.json()["fields"]
    assert api.post(url + "autostart/", {"enabled": True}, format="json").status_code == 200
    assert api.get(url).json()["autostart"] is True
    assert api.delete(url + "?delete_volumes=perhaps").status_code == 400
    r = api.delete(url + "?delete_volumes=false")
    assert r.status_code == 200 and r.json() == {"detail": f"{vm.name} was deleted.", "deleted_volumes": [],
                                                 "kept": [], "failed": []}
    assert api.get(url).status_code == 404


def test_get_never_changes_state(api, vm) -> None:  # type: ignore[no-untyped-def]
    assert api.get(f"/api/v1/vms/{vm.uuid}/start/").status_code == 405
    assert api.get(f"/api/v1/vms/{vm.uuid}/").json()["state"] == "shutoff"


def test_bad_filters_are_400(api, vm) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/api/v1/vms/?state=dancing")
    assert r.status_code == 400 and r.json()["error"] == "invalid"
    assert api.get("/api/v1/vms/?host=abc").status_code == 400
    assert api.get("/api/v1/vms/?state=shutoff&name=" + vm.name[-4:]).json()["count"] == 1


def test_unknown_vm_is_json_404(api) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/api/v1/vms/00000000-0000-4000-8000-000000000000/")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "No such virtual machine."}


def test_token_authentication(owner, vm) -> None:  # type: ignore[no-untyped-def]
    secret = token_create(actor=owner, name="test").secret
    client = APIClient()
    assert client.get("/api/v1/vms/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/v1/vms/").json()["count"] == 1


def test_host_unreachable_is_503(db, staff, owner) -> None:  # type: ignore[no-untyped-def]
    host = Host.objects.create(name="gone", uri="qemu+unix:///system?socket=/nonexistent/sock")
    from kvmweb.machines.models import VirtualMachine

    vm = VirtualMachine.objects.create(host=host, uuid="11111111-1111-4111-8111-111111111111", name="ghost", owner=owner)
    client = APIClient()
    client.force_authenticate(owner)
    r = client.get(f"/api/v1/vms/{vm.uuid}/")
    assert r.status_code == 503 and r.json()["error"] == "host_unavailable"
    assert client.post(f"/api/v1/vms/{vm.uuid}/start/").status_code == 503
    body = client.get("/api/v1/vms/").json()
    assert body["unavailable_hosts"][0]["host"] == "gone"
    client.force_authenticate(staff)
    hosts = client.get("/api/v1/hosts/").json()
    assert hosts[0]["available"] is False and hosts[0]["error"]


def test_schema_and_docs(api) -> None:  # type: ignore[no-untyped-def]
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/v1/vms/{uuid}/force-off/" in schema["paths"]
    assert api.get("/api/docs/", HTTP_ACCEPT="text/html").status_code == 200


def test_hosts_api_for_staff(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(staff)
    body = client.get(f"/api/v1/hosts/{test_host.pk}/").json()
    assert body["available"] is True and body["name"] == "testdrv"
    assert client.get("/api/v1/hosts/999/").status_code == 404


def test_hypervisor_error_codes_map_to_http() -> None:
    from kvmweb.core.errors import error_reply

    assert error_reply(hv.HostUnavailable("x")).status == 503  # type: ignore[union-attr]
    assert error_reply(hv.DomainNotFound("x")).status == 404  # type: ignore[union-attr]
    assert error_reply(hv.InvalidRequest("x")).status == 400  # type: ignore[union-attr]
    assert error_reply(hv.OperationInvalid("x")).status == 409  # type: ignore[union-attr]
    assert error_reply(ValueError("x")) is None
