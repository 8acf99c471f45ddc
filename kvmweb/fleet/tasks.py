"""Celery tasks of the fleet app: thin, each calls one job body."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task

from . import maintenance, migration


@job_task(migration.KIND)
def vm_migrate(ctx: JobContext) -> dict[str, Any] | None:
    return migration.vm_migrate_run(ctx)


@job_task(maintenance.EVACUATE)
def host_evacuate(ctx: JobContext) -> dict[str, Any] | None:
    return maintenance.host_evacuate_run(ctx)
