"""Celery tasks of the protection app: thin, each calls one job body."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task

from . import backups, snapshots


# ------------------------------------------------------------------------------------------------ snapshots
@job_task("snapshot.create")
def snapshot_create(ctx: JobContext) -> dict[str, Any] | None:
    return snapshots.snapshot_create_run(ctx)


@job_task("snapshot.revert")
def snapshot_revert(ctx: JobContext) -> dict[str, Any] | None:
    return snapshots.snapshot_revert_run(ctx)


@job_task("snapshot.delete")
def snapshot_delete(ctx: JobContext) -> dict[str, Any] | None:
    return snapshots.snapshot_delete_run(ctx)


# ------------------------------------------------------------------------------------------------ backups
@job_task("backup.create")
def backup_create(ctx: JobContext) -> dict[str, Any] | None:
    return backups.backup_create_run(ctx)


@job_task("backup.restore")
def backup_restore(ctx: JobContext) -> dict[str, Any] | None:
    return backups.backup_restore_run(ctx)
