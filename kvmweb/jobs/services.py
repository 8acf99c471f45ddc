"""Every change to a Job. Tasks report through these; pages and the API cancel through ``job_cancel``.

The life of a job: ``job_create`` (queued, the Celery task is sent when the transaction commits) →
``job_start`` (running) → ``job_progress``/``job_log`` → ``job_succeed`` | ``job_fail`` | ``job_cancelled``.
A job that has finished never changes state again.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from celery import current_app
from kvmweb.access.permissions import Actor, require_job
from kvmweb.audit.services import audit_record
from kvmweb.core.errors import ConflictError, PermissionDeniedError, ServiceUnavailableError, error_reply
from kvmweb.events.publish import publish
from kvmweb.hosts.models import Host

from .models import Job, JobLogLine
from .registry import load_app_modules, queue_default, queue_of_host, task_name, undo_handler

log = logging.getLogger(__name__)


def job_event(job: Job, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "job", "id": job.pk, "job_kind": job.kind, "title": job.title, "state": job.state,
        "progress": job.progress, "error": job.error, "target_type": job.target_type, "target": job.target,
        "finished": job.finished_state, **extra,
    }


def _publish(job: Job, **extra: Any) -> None:
    publish(job_event(job, **extra), user_ids=[job.actor_id])


def _broker_name(url: str) -> str:
    """``redis://:secret@127.0.0.1:6379/0`` → ``Redis at 127.0.0.1:6379`` (never the password)."""
    parts = urlsplit(url or "")
    kind = {"redis": "Redis", "rediss": "Redis", "amqp": "RabbitMQ", "amqps": "RabbitMQ"}.get(parts.scheme,
                                                                                             parts.scheme or "?")
    try:
        port = parts.port or (6379 if kind == "Redis" else None)
    except ValueError:
        port = None
    return f"{kind} at {parts.hostname or 'localhost'}" + (f":{port}" if port else "")


def job_queue_check() -> None:
    """Refuse (503, ``queue_unavailable``) when the job queue's broker does not answer within
    ``KVMWEB_QUEUE_CHECK_TIMEOUT`` seconds (0: never check), so an action that queues a job is refused before
    anything is made instead of failing later with "could not be queued". One new connection and a ping: about
    2 ms while Redis answers; a refused connection fails at once. Jobs that run in-process (eager) need no broker."""
    timeout = float(settings.KVMWEB_QUEUE_CHECK_TIMEOUT)
    if timeout <= 0 or current_app.conf.task_always_eager:
        return
    try:
        with current_app.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)  # max_retries=0: one attempt, no back-off
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the queue does not answer
        where = _broker_name(str(current_app.conf.broker_write_url or current_app.conf.broker_url or ""))
        raise ServiceUnavailableError(
            f"The job queue ({where}) does not answer: {str(exc).rstrip('.')}. Nothing was done; try again when "
            "it is back.",
            code="queue_unavailable") from exc


def job_create(
    *, actor: Actor | None, kind: str, title: str, target_type: str = "", target: str = "",
    host: Host | None = None, params: dict[str, Any] | None = None, cancellable: bool = True,
    cleanup: list[dict[str, Any]] | None = None, queue: str | None = None, send: bool = True,
) -> Job:
    """Record a queued job and send its task (found by ``kind`` in Celery's registry, see ``registry.task_name``)
    when the transaction commits, to the queue of its ``host`` (``registry.queue_of_host``) or, for a job that
    concerns no host, the default queue; ``queue`` overrides both. Refused first (503, nothing written) when
    the queue does not answer (:func:`job_queue_check`).

    ``cleanup`` may pre-record undo steps for work the caller already did in this transaction (see runner).
    ``send=False`` records the job without sending a task: a parent job runs it itself (``runner.execute_child``).
    """
    job_queue_check()
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    job = Job.objects.create(
        kind=kind, title=title[:200], target_type=target_type, target=target[:200], host=host, actor=user,
        params=params or {}, cancellable=cancellable, cleanup=cleanup or [],
    )
    JobLogLine.objects.create(job=job, message=f"Queued by {user.get_username() if user else 'the system'}.")

    target = queue or (queue_of_host(host.pk) if host is not None else queue_default())

    def send_task() -> None:
        if task_name(kind) not in current_app.tasks:
            load_app_modules()  # a web process has not imported the app's tasks module that registers it
        task = current_app.tasks.get(task_name(kind))
        if task is None:
            job_fail(job_id=job.pk, error=f"The job could not be queued: no task runs jobs of kind {kind!r}.")
            return
        try:
            result = task.apply_async(args=[job.pk], queue=target)
        except Exception as exc:  # noqa: BLE001 - the broker is down: the job must not stay queued forever
            log.exception("could not queue job %s", job.pk)
            job_fail(job_id=job.pk, error=f"The job could not be queued (is Redis running?): {exc}")
            return
        Job.objects.filter(pk=job.pk, task_id="").update(task_id=result.id or "")

    if send:
        transaction.on_commit(send_task)
    return job


WEB_WORKER = "web"  # jobs driven by web requests (an upload in pieces), not by a Celery task


def job_open(
    *, actor: Actor | None, kind: str, title: str, target_type: str = "", target: str = "", host: Host | None = None,
    params: dict[str, Any] | None = None, cleanup: list[dict[str, Any]] | None = None,
    result: dict[str, Any] | None = None,
) -> Job:
    """A job that web requests drive (no Celery task): it starts running at once; the caller reports progress and
    finishes it. If it goes quiet for ``KVMWEB_STALE_UPLOAD_SECONDS`` the sweep fails it and runs its undo steps."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    now = timezone.now()
    job = Job.objects.create(
        kind=kind, title=title[:200], target_type=target_type, target=target[:200], host=host, actor=user,
        params=params or {}, cleanup=cleanup or [], result=result or {}, state=Job.State.RUNNING, started=now,
        heartbeat=now, worker=WEB_WORKER,
    )
    _append(job.pk, f"Started by {user.get_username() if user else 'the system'}.")
    _publish(job)
    return job


def _append(job_id: int, message: str, level: str = JobLogLine.Level.INFO) -> JobLogLine:
    return JobLogLine.objects.create(job_id=job_id, message=message[:10_000], level=level)


def job_start(*, job_id: int, task_id: str = "", worker: str = "") -> Job | None:
    """queued → running. Returns None when the job must not run (cancelled, already finished, unknown):
    a redelivered message for a job that was already handled does nothing."""
    now = timezone.now()
    updated = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started=now, heartbeat=now, worker=worker[:200],
        **({"task_id": task_id} if task_id else {}),
    )
    if not updated:
        return None
    job = Job.objects.get(pk=job_id)
    _append(job_id, f"Started on worker {worker or 'eager'}.")
    _publish(job, line=_line_json(job.lines.last()))
    return job


def job_log(*, job_id: int, message: str, level: str = JobLogLine.Level.INFO) -> None:
    line = _append(job_id, message, level)
    Job.objects.filter(pk=job_id).update(heartbeat=timezone.now())
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        _publish(job, line=_line_json(line))


def job_progress(*, job_id: int, percent: int, message: str = "") -> None:
    """Set progress (0–100, never going back) and optionally log a line."""
    percent = max(0, min(100, int(percent)))
    Job.objects.filter(pk=job_id, progress__lt=percent, state=Job.State.RUNNING).update(progress=percent)
    if message:
        job_log(job_id=job_id, message=message)
    else:
        Job.objects.filter(pk=job_id).update(heartbeat=timezone.now())
        job = Job.objects.filter(pk=job_id).first()
        if job is not None:
            _publish(job)


def _finish(job_id: int, state: str, *, error: str = "", message: str = "", level: str = "info",
            result: dict[str, Any] | None = None) -> Job | None:
    fields: dict[str, Any] = {"state": state, "finished": timezone.now(), "error": error[:10_000]}
    if state == Job.State.SUCCEEDED:
        fields["progress"] = 100
        fields["cleanup"] = []
    if result is not None:
        fields["result"] = result
    updated = Job.objects.filter(pk=job_id, state__in=Job.UNFINISHED).update(**fields)
    if not updated:
        return None
    line = _append(job_id, message or state.capitalize() + ".", level)
    job = Job.objects.get(pk=job_id)
    audit_record(actor=job.actor, action=f"job.{job.kind}", target_type=job.target_type or "job",
                 target=job.target or str(job.pk), host=job.host.uri if job.host else "",
                 ok=state == Job.State.SUCCEEDED, detail=error or state)
    _publish(job, line=_line_json(line))
    return job


def job_succeed(*, job_id: int, message: str = "", result: dict[str, Any] | None = None) -> Job | None:
    return _finish(job_id, Job.State.SUCCEEDED, message=message or "Succeeded.", result=result)


def job_fail(*, job_id: int, error: str) -> Job | None:
    return _finish(job_id, Job.State.FAILED, error=error, message=f"Failed: {error}", level="error")


def job_cancelled(*, job_id: int, message: str = "Cancelled.") -> Job | None:
    return _finish(job_id, Job.State.CANCELLED, error="Cancelled on request.", message=message, level="warning")


def job_is_cancel_requested(job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_cancel(*, actor: Actor, job: Job) -> Job:
    """Cancel a job: a queued one stops at once, a running one at its next check (see runner.JobContext)."""
    require_job(actor, job)
    if job.finished_state:
        raise ConflictError(f"Job #{job.pk} has already {job.state}.", code="job_finished")
    if not job.cancellable:
        raise PermissionDeniedError(f"Job #{job.pk} ({job.kind}) cannot be cancelled once queued.",
                                    code="not_cancellable")
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    _append(job.pk, f"Cancel requested by {actor.get_username()}.", JobLogLine.Level.WARNING)
    job.refresh_from_db()
    if job.state == Job.State.QUEUED or job.worker == WEB_WORKER:
        # Not started (nothing to undo but what the creating service recorded), or driven by web requests that
        # may never come again (an upload): undo and stop it now.
        run_cleanup(job.pk)
        started = job.state == Job.State.RUNNING
        job = job_cancelled(job_id=job.pk, message="Cancelled." if started else "Cancelled before it started.") or job
        _revoke(job.task_id)
    else:
        _publish(job)
    job.refresh_from_db()
    return job


def _revoke(task_id: str) -> None:
    if not task_id:
        return
    try:
        current_app.control.revoke(task_id)
    except Exception:  # noqa: BLE001 - the runner skips a cancelled job anyway
        log.warning("could not revoke task %s", task_id, exc_info=True)


def _line_json(line: JobLogLine | None) -> dict[str, Any] | None:
    if line is None:
        return None
    return {"id": line.pk, "at": line.at.isoformat(), "level": line.level, "message": line.message}


def line_json(line: JobLogLine) -> dict[str, Any]:
    return _line_json(line) or {}


def jobs_fail_unfinished(*, worker: str | None = None, reason: str, alive_workers: set[str] | None = None,
                         include_queued: bool = False) -> list[int]:
    """Mark running jobs failed (with ``reason``) and undo their recorded steps.

    ``worker``: only jobs of that worker. ``alive_workers``: only jobs whose worker is NOT in that set.
    Queued jobs stay queued (their message is still in the broker) unless ``include_queued``.
    """
    states = [Job.State.RUNNING] + ([Job.State.QUEUED] if include_queued else [])
    jobs = Job.objects.filter(state__in=states).exclude(worker=WEB_WORKER)
    if worker is not None:
        jobs = jobs.filter(worker=worker)
    if alive_workers is not None:
        jobs = jobs.exclude(worker__in=alive_workers)
    failed = []
    for job in jobs:
        run_cleanup(job.pk)
        if job_fail(job_id=job.pk, error=reason):
            failed.append(job.pk)
    return failed



def jobs_fail_stale_web(*, older_than_seconds: int) -> list[int]:
    """Fail web-driven jobs (uploads) that have shown no sign of life for a while, after undoing them."""
    limit = timezone.now() - timedelta(seconds=older_than_seconds)
    failed = []
    for job in Job.objects.filter(state=Job.State.RUNNING, worker=WEB_WORKER, heartbeat__lt=limit):
        run_cleanup(job.pk)
        if job_fail(job_id=job.pk, error=f"Nothing arrived for {older_than_seconds // 60} minutes: abandoned."):
            failed.append(job.pk)
    return failed


def readable(exc: BaseException) -> str:
    """The words a person reads for a failure: ours as they are, anything else named as unexpected."""
    reply = error_reply(exc) if isinstance(exc, Exception) else None
    if reply is not None:
        return reply.detail
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def run_cleanup(job_id: int) -> list[str]:
    """Run the job's recorded undo steps, newest first; log each. Returns what was logged."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or not job.cleanup:
            return []
        steps = list(job.cleanup)
        Job.objects.filter(pk=job_id).update(cleanup=[])
    said: list[str] = []
    for step in reversed(steps):
        handler = undo_handler(step.get("step", ""))
        description = step.get("description") or step.get("step")
        if handler is None:
            message, level = f"Could not roll back ({description}): no handler for {step.get('step')!r}.", "error"
        else:
            try:
                extra = handler(step.get("params") or {})
                message, level = f"Rolled back: {description}" + (f" ({extra})" if extra else "") + ".", "warning"
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest
                message, level = f"Could not roll back ({description}): {readable(exc)}", "error"
                log.exception("undo step %s of job %s failed", step, job_id)
        job_log(job_id=job_id, message=message, level=level)
        said.append(message)
    return said
