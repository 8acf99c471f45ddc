"""Fast tests of the Job mechanism: life cycle, undo steps, cancellation, stale-job recovery, permissions."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb.jobs import services
from kvmweb.jobs.models import Job
from kvmweb.jobs.recovery import recover_on_start
from kvmweb.jobs.runner import execute, undo_record
from kvmweb.jobs.tasks import selftest

pytestmark = pytest.mark.django_db


def _queue(actor, django_capture_on_commit_callbacks, **params) -> Job:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(actor=actor, kind="jobs.selftest", title="self-test",
                                  params={"pause": 0, **params})
    job.refresh_from_db()
    return job


def test_job_runs_to_success_with_progress_and_log(owner, eager, django_capture_on_commit_callbacks) -> None:
    job = _queue(owner, django_capture_on_commit_callbacks, steps=4)
    assert job.state == Job.State.SUCCEEDED
    assert job.progress == 100
    assert job.result == {"steps": 4}
    assert job.started and job.finished and job.finished >= job.started
    messages = [line.message for line in job.lines.all()]
    assert messages[0].startswith("Queued by alice")
    assert "step 2 of 4" in messages
    assert job.cleanup == []


def test_failing_job_runs_its_undo_steps_and_says_why(owner, eager, django_capture_on_commit_callbacks) -> None:
    job = _queue(owner, django_capture_on_commit_callbacks, steps=3, fail_at=2)
    assert job.state == Job.State.FAILED
    assert "asked to fail at step 2" in job.error
    messages = [line.message for line in job.lines.all()]
    assert any(m.startswith("Rolled back: the self-test's first step") for m in messages)
    assert job.cleanup == []


def test_job_of_a_kind_without_a_task_fails_at_once(owner, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    """The task is found by the job's kind (``kvmweb.job.<kind>``): a kind nobody registered must not stay queued."""
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(actor=owner, kind="jobs.no_such_kind", title="t")
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "could not be queued" in job.error


def test_cancel_queued_job_never_runs(owner, django_capture_on_commit_callbacks) -> None:
    job = services.job_create(actor=owner, kind="jobs.selftest", title="t")  # not sent: no commit
    job = services.job_cancel(actor=owner, job=job)
    assert job.state == Job.State.CANCELLED
    assert services.job_start(job_id=job.pk) is None  # a late message does nothing


def test_cancel_running_job_stops_at_next_check(owner) -> None:
    job = services.job_create(actor=owner, kind="jobs.selftest", title="t",
                              params={"steps": 3, "pause": 0})
    job = services.job_start(job_id=job.pk, worker="w")
    assert job is not None
    services.job_cancel(actor=owner, job=job)
    execute(lambda ctx: pytest.fail("the body must not run after a cancel request"), job)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED


def test_finished_job_cannot_be_cancelled(owner, eager, django_capture_on_commit_callbacks) -> None:
    from kvmweb.core.errors import ConflictError

    job = _queue(owner, django_capture_on_commit_callbacks, steps=1)
    with pytest.raises(ConflictError):
        services.job_cancel(actor=owner, job=job)


def test_worker_restart_fails_its_running_jobs_and_undoes_them(owner) -> None:
    job = services.job_create(
        actor=owner, kind="jobs.selftest", title="t",
        cleanup=[undo_record("jobs.selftest_undo", "half-made thing", step=1)],
    )
    services.job_start(job_id=job.pk, worker="celery@box")
    other = services.job_create(actor=owner, kind="jobs.selftest", title="t2")
    services.job_start(job_id=other.pk, worker="celery@gone-forever")
    failed = recover_on_start("celery@box")
    assert set(failed) == {job.pk, other.pk}
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "restarted" in job.error
    assert any("Rolled back: half-made thing" in line.message for line in job.lines.all())


def test_api_permissions_and_filters(owner, other_user, staff, eager, django_capture_on_commit_callbacks) -> None:
    mine = _queue(owner, django_capture_on_commit_callbacks, steps=1)
    theirs = _queue(other_user, django_capture_on_commit_callbacks, steps=1, fail_at=1)
    anon = Client()
    assert anon.get("/api/v1/jobs/").status_code in (401, 403)
    assert anon.get("/jobs/").status_code == 302
    alice = Client()
    alice.force_login(owner)
    ids = [j["id"] for j in alice.get("/api/v1/jobs/").json()["results"]]
    assert ids == [mine.pk]
    assert alice.get(f"/api/v1/jobs/{theirs.pk}/").status_code == 404
    assert alice.post(f"/api/v1/jobs/{theirs.pk}/cancel/").status_code == 404
    assert alice.get(f"/jobs/{theirs.pk}/").status_code == 404
    detail = alice.get(f"/api/v1/jobs/{mine.pk}/").json()
    assert detail["state"] == "succeeded" and detail["log"]
    assert alice.post(f"/api/v1/jobs/{mine.pk}/cancel/").status_code == 409
    assert alice.get("/api/v1/jobs/?state=bogus").status_code == 400
    root = Client()
    root.force_login(staff)
    assert {j["id"] for j in root.get("/api/v1/jobs/").json()["results"]} == {mine.pk, theirs.pk}
    assert [j["id"] for j in root.get("/api/v1/jobs/?state=failed").json()["results"]] == [theirs.pk]
    page = alice.get(f"/jobs/{mine.pk}/").content.decode()
    assert 'data-job-id="%d"' % mine.pk in page and "step 1 of 1" in page
    assert "self-test" in alice.get("/jobs/").content.decode()


def test_redelivered_message_of_a_running_job_fails_it(owner) -> None:  # type: ignore[no-untyped-def]
    job = services.job_create(actor=owner, kind="jobs.selftest", title="t",
                              cleanup=[undo_record("jobs.selftest_undo", "half-made thing", step=1)])
    services.job_start(job_id=job.pk, worker="w")
    selftest.apply(args=[job.pk])  # the same message again: its first runner died
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "died" in job.error
    assert any("Rolled back: half-made thing" in line.message for line in job.lines.all())
