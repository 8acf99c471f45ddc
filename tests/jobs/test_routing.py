"""Where a job's task is sent: the queue of the job's host, the default queue for a job of no host, or the queue the
caller names; ``manage.py job_selftest --host`` reaches a host's worker. (That a stuck host holds up only its own
queue, with real workers: test_host_queues_real.py.)"""
from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from kvmweb.jobs import services
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import queue_default, queue_of_host
from kvmweb.jobs.tasks import selftest

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    class Result:
        id = "task-1"

    def apply_async(*args: Any, **kw: Any) -> Result:
        calls.append(kw)
        return Result()

    monkeypatch.setattr(selftest, "apply_async", apply_async)
    return calls


def _create(django_capture_on_commit_callbacks, **kw: Any) -> Job:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        return services.job_create(actor=None, kind="jobs.selftest", title="self-test", **kw)


def test_a_job_goes_to_its_hosts_queue(test_host, sent, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    _create(django_capture_on_commit_callbacks, host=test_host)
    _create(django_capture_on_commit_callbacks)
    _create(django_capture_on_commit_callbacks, host=test_host, queue="elsewhere")
    assert [kw["queue"] for kw in sent] == [queue_of_host(test_host.pk), queue_default(), "elsewhere"]
    assert queue_of_host(test_host.pk) == f"{queue_default()}.host-{test_host.pk}"


def test_job_selftest_on_a_host(test_host, sent, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        call_command("job_selftest", "--host", test_host.name, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert [kw["queue"] for kw in sent] == [queue_of_host(test_host.pk)]
    assert Job.objects.get().host == test_host
    with pytest.raises(CommandError, match="No host is named 'nope'"):
        call_command("job_selftest", "--host", "nope")
