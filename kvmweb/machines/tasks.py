"""Celery tasks of the machines app: thin, each calls one service function."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task

from . import shutdown


@job_task(shutdown.KIND)
def shutdown_vm(ctx: JobContext) -> dict[str, Any]:
    return shutdown.vm_shutdown_run(ctx)
