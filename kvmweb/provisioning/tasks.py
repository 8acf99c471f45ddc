"""Celery tasks of the provisioning app: thin, each calls one service function; the undo steps of its jobs."""
from __future__ import annotations

from typing import Any

from kvmweb.jobs.runner import JobContext, job_task, undo_step
from kvmweb.media.models import IsoImage

from . import catalog, services
from .models import Template


@job_task("vm.create")
def create_vm(ctx: JobContext) -> dict[str, Any]:
    return services.vm_create_run(ctx)


@job_task(catalog.FROM_VM)
def template_from_vm(ctx: JobContext) -> dict[str, Any]:
    return catalog.template_from_vm_run(ctx)


@undo_step("provisioning.forget_template")
def _forget_template(params: dict[str, Any]) -> str | None:
    """Remove the rows of a template whose image was never completed (its copy has an undo step of its own)."""
    Template.objects.filter(pk=params["template_id"], image__complete=False).delete()
    removed, _ = IsoImage.objects.filter(pk=params["image_id"], complete=False, templates__isnull=True).delete()
    return None if removed else "it was already gone"
