"""Celery tasks of the storage app: thin, each calls one service function."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task

from . import clone


@job_task("storage.clone")
def clone_vm(ctx: JobContext) -> dict[str, Any] | None:
    return clone.clone_run(ctx)
