"""Shut down with a deadline on libvirt's test driver (whose guests obey ACPI at once; a guest that ignores it is
simulated by making the ACPI request do nothing): the API, validation, the job's log, cancelling, a dead queue."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobCancelled, JobContext
from kvmweb.jobs.services import job_start
from kvmweb.machines import services, shutdown
from tests.conftest import spec_testdrv
from tests.jobs.conftest import eager  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(owner, test_host):  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    services.vm_start(actor=owner, vm=vm)
    return vm


@pytest.fixture
def deaf_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guests ignore the ACPI request (as memtest86+ does)."""
    monkeypatch.setattr(hv.Domain, "shutdown", lambda self: None)


def _state(vm) -> str:  # type: ignore[no-untyped-def]
    return services.vm_domain(vm).state().slug


def _log(job: Job) -> list[str]:
    return [line.message for line in job.lines.order_by("pk")]


def test_without_a_body_it_stays_the_plain_request(api, running) -> None:  # type: ignore[no-untyped-def]
    r = api.post(f"/api/v1/vms/{running.uuid}/shutdown/")
    assert r.status_code == 200 and r.json()["state"] == "shutoff"
    assert not Job.objects.exists()


def test_a_guest_that_obeys_is_not_forced(api, running, eager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/api/v1/vms/{running.uuid}/shutdown/", {"force_after": 30}, format="json")
    assert r.status_code == 202, r.content
    body = r.json()
    assert body["type"] == "vm.shutdown" and body["target"] == str(running.uuid)
    assert body["detail"] == (f"Shutdown requested: {running.name} is forced off if it is still running after 30 s "
                              f"(job #{body['id']}).")
    job = Job.objects.get(pk=body["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result == {"forced": False, "seconds": 0}
    log = _log(job)
    assert log[1] == (f"ACPI shutdown sent by alice; {running.name} is forced off if it is still running after "
                      "30 s.")
    assert "The guest shut down after 0 s." in log and not any("Forced" in line for line in log)
    assert _state(running) == "shutoff"
    assert AuditEntry.objects.filter(action="vm.shutdown", ok=True, detail=f"force off after 30 s: job {job.pk}")


def test_a_deaf_guest_is_forced_off_after_the_deadline(api, running, deaf_guest, eager,  # noqa: F811
                                                       django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/api/v1/vms/{running.uuid}/shutdown/", {"force_after": 1}, format="json")
    assert r.status_code == 202, r.content
    job = Job.objects.get(pk=r.json()["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["forced"] is True and job.result["seconds"] >= 1
    assert any(line.startswith("Forced off after 1 s: the guest had not shut down.") for line in _log(job)), _log(job)
    assert _state(running) == "shutoff"


def test_default_deadline_from_settings(owner, running, deaf_guest, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_SHUTDOWN_TIMEOUT = 45
    result = shutdown.vm_shutdown_deadline(actor=owner, vm=running, force_after="")
    assert result.force_after == 45 and result.job.params["force_after"] == 45


@pytest.mark.parametrize("value", [0, 3601, -5, "abc", True, 2.5, [10]])
def test_bad_deadlines_refused_nothing_done(api, running, value) -> None:  # type: ignore[no-untyped-def]
    r = api.post(f"/api/v1/vms/{running.uuid}/shutdown/", {"force_after": value}, format="json")
    assert r.status_code == 400, r.content
    assert r.json()["fields"] == {"force_after": ["a whole number of seconds from 1 to 3600"]}
    assert not Job.objects.exists() and _state(running) == "running"


def test_refused_when_not_running_or_not_yours(api, owner, other_user, test_host, running) -> None:  # type: ignore[no-untyped-def]
    stopped = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    r = api.post(f"/api/v1/vms/{stopped.uuid}/shutdown/", {"force_after": 10}, format="json")
    assert r.status_code == 409 and r.json() == {"error": "not_running", "detail": f"{stopped.name} is not running."}
    bob = APIClient()
    bob.force_authenticate(other_user)
    assert bob.post(f"/api/v1/vms/{running.uuid}/shutdown/", {"force_after": 10}, format="json").status_code == 404
    assert not Job.objects.exists() and _state(running) == "running"


def test_cancel_stops_waiting_and_forces_nothing(owner, running, deaf_guest,
                                                 django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):  # not sent: this test runs the body itself
        job = shutdown.vm_shutdown_deadline(actor=owner, vm=running, force_after=60).job
    started = job_start(job_id=job.pk, worker="test")
    assert started is not None
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    with pytest.raises(JobCancelled):
        shutdown.vm_shutdown_run(JobContext(started))
    assert _state(running) == "running"
    assert f"Stopped waiting after 0 s: {running.name} was not forced off." in _log(job)


def test_refused_up_front_when_the_queue_is_down(api, running, settings) -> None:  # type: ignore[no-untyped-def]
    """The guest is not even asked: the test driver would have shut it down at once."""
    from kvmweb.celery import app
    from tests.live import free_port

    settings.KVMWEB_QUEUE_CHECK_TIMEOUT = 1
    old = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    try:
        r = api.post(f"/api/v1/vms/{running.uuid}/shutdown/", {"force_after": 10}, format="json")
    finally:
        app.conf.broker_url = old
    assert r.status_code == 503 and r.json()["error"] == "queue_unavailable"
    assert not Job.objects.exists() and _state(running) == "running"
