"""With the job queue down, actions that queue a job are refused up front: the live web process (daphne, as in
production) runs with its broker on a local port nobody listens on (the shared Redis is never stopped); creating and
cloning a VM on qemu:///system answer 503 with the reason, and nothing is made — no Job row, no volume, no domain."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from kvmweb.accounts.tokens import token_create
from kvmweb.jobs.models import Job
from tests.conftest import memtest_spec, unique_name, virsh
from tests.live import Portal, free_port, server_env, web_process
from tests.media.conftest import memtest_iso  # noqa: F401

pytestmark = [pytest.mark.real]


@pytest.fixture
def portal_without_queue(django_db_setup) -> Iterator[tuple[Portal, int]]:  # type: ignore[no-untyped-def]
    """daphne on the test database, its Celery broker pointed at a dead local port."""
    dead = free_port()
    env = server_env()
    env["KVMWEB_CELERY_BROKER_URL"] = f"redis://127.0.0.1:{dead}/0"
    with web_process(env) as portal:
        yield portal, dead


def _post(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.django_db(transaction=True)
def test_create_and_clone_refused_with_503_nothing_made(
    portal_without_queue, qemu_host, owner, memtest_iso, test_pool, real_vm, make_volume, cleanup_domains,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.storage.models import PoolAccess

    portal, dead = portal_without_queue
    PoolAccess.objects.create(host=qemu_host, pool=test_pool["name"], everyone=True)
    token = token_create(actor=owner, name="queue check").secret
    expected = f"The job queue (Redis at 127.0.0.1:{dead}) does not answer: "

    name = unique_name("noq")
    cleanup_domains.append(name)
    status, body = _post(f"{portal.url}/api/v1/vms/", token, {
        "host": qemu_host.pk, "name": name, "memory": "96", "iso": memtest_iso.pk, "disk_size": "64M",
        "disk_pool": test_pool["name"], "start": True})
    assert status == 503, body
    assert body["error"] == "queue_unavailable" and body["detail"].startswith(expected), body
    assert name not in virsh("list", "--all", "--name").split()
    assert f"{name}.qcow2" not in virsh("vol-list", test_pool["name"])

    source = real_vm(memtest_spec(disk=make_volume()))
    clone = unique_name("noq-clone")
    cleanup_domains.append(clone)
    volumes_before = virsh("vol-list", test_pool["name"])
    status, body = _post(f"{portal.url}/api/v1/vms/{source.uuid}/clone/", token, {"name": clone})
    assert status == 503, body
    assert body["error"] == "queue_unavailable" and body["detail"].startswith(expected), body
    assert clone not in virsh("list", "--all", "--name").split()
    assert virsh("vol-list", test_pool["name"]) == volumes_before
    assert not Job.objects.exists()
