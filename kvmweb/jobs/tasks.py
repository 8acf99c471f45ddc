"""The jobs app's own tasks: ``jobs.selftest`` counts through steps with progress (it checks that a worker runs
jobs end to end, ``manage.py job_selftest``, and is what the tests kill a worker under); ``sweep_stale_web`` is the
periodic sweep of abandoned uploads (``CELERY_BEAT_SCHEDULE``)."""
from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from .recovery import stale_web_seconds
from .runner import JobContext, job_task, undo_step
from .services import jobs_fail_stale_web


@shared_task(name="kvmweb.jobs.sweep_stale_web", ignore_result=True)
def sweep_stale_web() -> list[int]:
    """Fail web-driven jobs (uploads) quiet for ``KVMWEB_STALE_UPLOAD_SECONDS`` and undo them (their unfinished
    files go). Sent by Celery beat every ``KVMWEB_SWEEP_SECONDS``; also run when a worker starts."""
    return jobs_fail_stale_web(older_than_seconds=stale_web_seconds())


@undo_step("jobs.selftest_undo")
def _selftest_undo(params: dict[str, Any]) -> str | None:
    return f"nothing real to undo for step {params.get('step')}"


@job_task("jobs.selftest")
def selftest(ctx: JobContext) -> dict[str, Any]:
    steps = max(1, min(int(ctx.params.get("steps", 5)), 600))
    pause = max(0.0, min(float(ctx.params.get("pause", 0.1)), 5.0))
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        if step == 1:
            ctx.undo("jobs.selftest_undo", "the self-test's first step", step=step)
        if ctx.params.get("fail_at") == step:
            raise RuntimeError(f"asked to fail at step {step}")
        time.sleep(pause)
        ctx.progress(step * 100 // steps, f"step {step} of {steps}")
    return {"steps": steps}
