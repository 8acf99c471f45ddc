"""One queue per host: jobs stuck on one host do not hold up the jobs of another host, nor those that concern no
host. The run's workers (``manage.py workers``, tests.live.celery_worker_proc) take one job at a time per queue;
two long jobs fill the stuck host's worker and its queue, and a job of qemu:///system and one of no host still
run to the end meanwhile — on one shared queue they would wait behind the stuck ones. Then a second ``workers``
process (a second machine) joins: every job of a host queue consumed twice runs exactly once."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from django.db import transaction

from kvmweb.hosts.models import Host
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import queue_of_host
from kvmweb.jobs.services import job_cancel, job_create
from tests.live import ARTIFACTS, ROOT, server_env, stopped_at_end

pytestmark = [pytest.mark.real]


def _queue(host: Host | None, *, steps: int, pause: float) -> Job:
    with transaction.atomic():
        return job_create(actor=None, kind="jobs.selftest", title=f"self-test on {host or 'no host'}", host=host,
                          params={"steps": steps, "pause": pause})


def _wait(check, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _state(job: Job) -> str:
    job.refresh_from_db()
    return job.state


@pytest.mark.django_db(transaction=True)
def test_a_stuck_host_holds_up_only_its_own_queue(celery_worker_proc, qemu_host, staff) -> None:  # type: ignore[no-untyped-def]
    stuck = Host.objects.create(name="stuck", uri="test:///default", domain_type="auto")
    # 600 steps of 0.5 s: "stuck" for the length of the test; they stop when cancelled (at their next step)
    hung = [_queue(stuck, steps=600, pause=0.5) for _ in range(2)]
    try:
        _wait(lambda: _state(hung[0]) == Job.State.RUNNING)
        assert _state(hung[1]) == Job.State.QUEUED  # the stuck host's worker is full
        other = _queue(qemu_host, steps=2, pause=0.1)
        hostless = _queue(None, steps=2, pause=0.1)
        _wait(lambda: _state(other) == Job.State.SUCCEEDED and _state(hostless) == Job.State.SUCCEEDED)
        assert [_state(j) for j in hung] == [Job.State.RUNNING, Job.State.QUEUED]  # still stuck meanwhile
        other.refresh_from_db()
        assert other.worker.startswith(f"test-{os.getpid()}-host{qemu_host.pk}@"), other.worker
        assert hung[0].worker != other.worker
    finally:
        for job in hung:
            job.refresh_from_db()
            if not job.finished_state:
                job_cancel(actor=staff, job=job)
    _wait(lambda: all(_state(j) == Job.State.CANCELLED for j in hung))


@pytest.mark.django_db(transaction=True)
def test_two_machines_consuming_one_host_queue_run_each_job_once(celery_worker_proc, qemu_host) -> None:  # type: ignore[no-untyped-def]
    log = ARTIFACTS / f"celery-second-{os.getpid()}.log"
    with log.open("wb") as out:
        second = subprocess.Popen(
            [sys.executable, "manage.py", "workers", "--pool=threads", "--concurrency=1", "--host-concurrency=1",
             "--rescan=0.5", "--name", f"second-{os.getpid()}"],
            cwd=ROOT, env=server_env(), stdout=out, stderr=subprocess.STDOUT)
    with stopped_at_end(second, timeout=60):
        ready = re.compile(rf"second-{os.getpid()}-host{qemu_host.pk}@\S+ ready")
        _wait(lambda: ready.search(log.read_text()) is not None)
        jobs = [_queue(qemu_host, steps=3, pause=0.2) for _ in range(8)]
        _wait(lambda: all(_state(j) == Job.State.SUCCEEDED for j in jobs))
    for job in jobs:
        assert job.lines.filter(message__startswith="Started on worker").count() == 1
    workers = {j.worker.split("@")[0] for j in jobs}
    assert workers <= {f"test-{os.getpid()}-host{qemu_host.pk}", f"second-{os.getpid()}-host{qemu_host.pk}"}
    assert queue_of_host(qemu_host.pk).endswith(f".host-{qemu_host.pk}")
