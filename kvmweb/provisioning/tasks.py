"""Celery tasks of the provisioning app: thin, each calls one service function."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task

from . import services


@job_task("vm.create")
def create_vm(ctx: JobContext) -> dict[str, Any]:
    return services.vm_create_run(ctx)
