"""An action that queues a job is refused up front (503, nothing made) when the job queue's broker does not answer.
Fast: the broker is a port nobody listens on (no Redis needed); see test_queue_check_real.py for the live portal."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.core.errors import ServiceUnavailableError, error_reply
from kvmweb.jobs.models import Job
from kvmweb.jobs.services import _broker_name, job_create, job_queue_check
from tests.conftest import spec_testdrv, unique_name
from tests.live import free_port

pytestmark = pytest.mark.django_db
TEST_URI = "test:///default"


@pytest.fixture
def dead_broker(settings) -> Iterator[int]:  # type: ignore[no-untyped-def]
    """The job queue's broker is a local port nobody listens on; the check is on (1 s)."""
    from kvmweb.celery import app

    port = free_port()
    settings.KVMWEB_QUEUE_CHECK_TIMEOUT = 1
    old = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = f"redis://127.0.0.1:{port}/0", False
    yield port
    app.conf.broker_url, app.conf.task_always_eager = old


def _names() -> set[str]:
    return {row.name for row in hv.domain_list(hv.registry.connection(TEST_URI), sizes=False)}


def test_job_create_refused_without_writing_anything(owner, dead_broker) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceUnavailableError) as caught:
        job_create(actor=owner, kind="jobs.selftest", title="never queued")
    reply = error_reply(caught.value)
    assert reply is not None and (reply.status, reply.code) == (503, "queue_unavailable")
    assert reply.detail.startswith(f"The job queue (Redis at 127.0.0.1:{dead_broker}) does not answer: ")
    assert "Nothing was done" in reply.detail
    assert not Job.objects.exists()


def test_no_check_when_off_or_eager(owner, dead_broker, settings) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.celery import app

    settings.KVMWEB_QUEUE_CHECK_TIMEOUT = 0
    job_queue_check()
    settings.KVMWEB_QUEUE_CHECK_TIMEOUT = 1
    app.conf.task_always_eager = True  # jobs run in-process: no broker involved
    job_queue_check()


def test_broker_named_without_its_password() -> None:
    assert _broker_name("redis://:s3cret@queue.example:6380/1") == "Redis at queue.example:6380"
    assert _broker_name("redis://127.0.0.1/0") == "Redis at 127.0.0.1:6379"
    assert _broker_name("amqp://user:pw@rabbit:5672//") == "RabbitMQ at rabbit:5672"


def test_create_refused_by_api_and_page_nothing_made(owner, test_host, dead_broker) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.networks.models import AllowedNetwork
    from kvmweb.storage.models import PoolAccess

    PoolAccess.objects.create(host=test_host, pool="default-pool", everyone=True)
    AllowedNetwork.objects.create(host=test_host, name="default")
    api = APIClient()
    api.force_authenticate(owner)
    name = unique_name()
    r = api.post("/api/v1/vms/", {"host": test_host.pk, "name": name, "memory": "128", "disk_size": "64M",
                                  "disk_pool": "default-pool"}, format="json")
    assert r.status_code == 503, r.content
    body = r.json()
    assert body["error"] == "queue_unavailable"
    assert body["detail"].startswith(f"The job queue (Redis at 127.0.0.1:{dead_broker}) does not answer: ")
    assert name not in _names() and not Job.objects.exists()
    pool = hv.pool_lookup(hv.registry.connection(TEST_URI), "default-pool")
    assert not pool.has_volume(f"{name}.qcow2")

    page = Client()
    page.force_login(owner)
    r = page.post(f"/vms/new/?host={test_host.pk}", {
        "host": test_host.pk, "name": name, "os_variant": "generic", "vcpus": 1, "memory": 128, "memory_unit": "M",
        "disk": "none", "disk_format": "qcow2"})
    assert r.status_code == 200
    assert "does not answer" in r.content.decode()
    assert name not in _names() and not Job.objects.exists()


def test_clone_refused_nothing_made(owner, test_host, dead_broker) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_define

    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    api = APIClient()
    api.force_authenticate(owner)
    clone = unique_name("clone")
    r = api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": clone}, format="json")
    assert r.status_code == 503, r.content
    assert r.json()["error"] == "queue_unavailable" and "does not answer" in r.json()["detail"]
    assert clone not in _names() and not Job.objects.exists()
