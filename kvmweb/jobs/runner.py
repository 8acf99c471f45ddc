"""How a long piece of work becomes a Job-tracked Celery task.

    @undo_step("storage.delete_volume")             # in the app's services (registry.py)
    def _delete_volume(params): ...                  # idempotent: may run again after a crash

    @job_task("storage.clone")                       # in the app's tasks.py
    def clone(ctx: JobContext) -> dict | None:
        ctx.progress(10, "Copying...")
        ctx.undo("storage.delete_volume", f"delete volume {path}", path=path)   # persisted before the work
        ...
        ctx.check_cancelled()                         # raises JobCancelled when someone asked
        return {"path": path}                         # stored as job.result

A service queues it by kind: ``job_create(kind="storage.clone", ...)``. Whatever ``fn`` raises fails the job with
a readable message, after the recorded undo steps ran in reverse (each logged). The undo steps are stored in the
Job row, so a job whose worker died is undone when a worker starts.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import transaction

from kvmweb.core.errors import error_reply

from . import services
from .models import Job
from .registry import task_name, undo_record, undo_step
from .services import readable

__all__ = ["JOB_TASKS", "JobCancelled", "JobContext", "execute", "execute_child", "job_task", "readable", "undo_record", "undo_step"]

log = logging.getLogger(__name__)

JOB_TASKS: dict[str, Any] = {}


class JobCancelled(Exception):
    """Raised by ``JobContext.check_cancelled`` when someone asked to cancel the job."""


class JobContext:
    """What a task body gets: its job's params and the ways to report and to check for cancellation."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.job_id: int = job.pk
        self.params: dict[str, Any] = dict(job.params)

    def log(self, message: str, level: str = "info") -> None:
        services.job_log(job_id=self.job_id, message=message, level=level)

    def progress(self, percent: int, message: str = "") -> None:
        services.job_progress(job_id=self.job_id, percent=percent, message=message)

    def check_cancelled(self) -> None:
        if services.job_is_cancel_requested(self.job_id):
            raise JobCancelled()

    def undo(self, step: str, description: str, /, **params: Any) -> None:
        """Record an undo step BEFORE doing the work it undoes (undo handlers tolerate 'not there')."""
        record = undo_record(step, description, **params)
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job_id)
            job.cleanup = [*job.cleanup, record]
            job.save(update_fields=["cleanup"])

    def forget_undo(self, step: str, **params: Any) -> None:
        """Drop a recorded undo step (by name and params): e.g. the work it undoes turned out not to be ours."""
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=self.job_id)
            job.cleanup = [s for s in job.cleanup if not (s.get("step") == step and s.get("params") == params)]
            job.save(update_fields=["cleanup"])

    def keep(self) -> None:
        """Forget the undo steps: what was made so far stays even if a later step fails."""
        Job.objects.filter(pk=self.job_id).update(cleanup=[])

    def set_result(self, **values: Any) -> None:
        job = Job.objects.get(pk=self.job_id)
        Job.objects.filter(pk=self.job_id).update(result={**job.result, **values})


def job_task(kind: str) -> Callable[[Callable[[JobContext], dict[str, Any] | None]], Any]:
    """Make ``fn(ctx)`` the Celery task of jobs of type ``kind`` (``job_create(kind=...)`` queues it)."""
    def wrap(fn: Callable[[JobContext], dict[str, Any] | None]) -> Any:
        @shared_task(name=task_name(kind), bind=True, acks_late=True, ignore_result=True)
        def task(self: Any, job_id: int) -> None:
            job = services.job_start(job_id=job_id, task_id=self.request.id or "",
                                     worker=self.request.hostname or "")
            if job is None:
                _redelivered(job_id)
                return  # cancelled before it ran, or a redelivered message for a job already handled
            execute(fn, job)

        task.job_kind = kind
        task.job_body = fn
        JOB_TASKS[kind] = task
        return task

    return wrap


def _redelivered(job_id: int) -> None:
    """The message of a job already running came again: the process that ran it died (a prefork child killed,
    acks_late redelivered it). Undo and fail it rather than leave it running forever."""
    if Job.objects.filter(pk=job_id, state=Job.State.RUNNING).exists():
        services.run_cleanup(job_id)
        services.job_fail(job_id=job_id, error="The worker process running this job died; it was stopped and undone.")


def execute_child(kind: str, job_id: int, *, worker: str) -> Job | None:
    """Run a job recorded with ``job_create(send=False)`` here and now, inside a parent job's task (children of
    one parent run one after another; each has its own log, progress, cancel and undo). Returns it finished."""
    job = services.job_start(job_id=job_id, worker=worker)
    if job is None:
        return Job.objects.filter(pk=job_id).first()
    fn = JOB_TASKS[kind].job_body
    execute(fn, job)
    return Job.objects.get(pk=job_id)


def execute(fn: Callable[[JobContext], dict[str, Any] | None], job: Job) -> None:
    ctx = JobContext(job)
    try:
        ctx.check_cancelled()
        result = fn(ctx)
    except JobCancelled:
        ctx.log("Cancel requested: undoing what was done.", "warning")
        services.run_cleanup(job.pk)
        services.job_cancelled(job_id=job.pk)
    except Exception as exc:  # noqa: BLE001 - every failure ends the job with a readable error
        if error_reply(exc) is None:
            log.exception("job %s (%s) crashed", job.pk, job.kind)
        services.run_cleanup(job.pk)
        services.job_fail(job_id=job.pk, error=readable(exc))
    else:
        current = Job.objects.get(pk=job.pk).result
        services.job_succeed(job_id=job.pk, result={**current, **(result or {})})
