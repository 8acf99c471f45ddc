"""Celery tasks of the protection app: thin, each calls one service function."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task

from . import backups


# ================================================================================================ backups
@job_task("backup.create")
def backup_create(ctx: JobContext) -> dict[str, Any] | None:
    return backups.backup_create_run(ctx)


@job_task("backup.restore")
def backup_restore(ctx: JobContext) -> dict[str, Any] | None:
    return backups.backup_restore_run(ctx)
