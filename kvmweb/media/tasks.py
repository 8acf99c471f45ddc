"""Jobs of the media library (both kinds): importing a file already on a host (a Celery task), and the undo steps
of uploads (jobs driven by the browser's requests) and imports."""
from __future__ import annotations

from typing import Any

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.runner import JobContext, job_task, undo_step

from . import services
from .models import IsoImage


@undo_step("media.delete_upload")
def _delete_upload(params: dict[str, Any]) -> str | None:
    """Remove an unfinished upload: its volume and its row (never a complete or registered medium)."""
    iso = IsoImage.objects.filter(pk=params["iso_id"], complete=False, registered=False).first()
    if iso is None:
        return "nothing unfinished to remove"
    try:
        hv.pool_lookup(hv.registry.connection(params["uri"]), iso.pool).volume(iso.name).delete()
    except hv.NotFound:
        pass
    iso.delete()
    return None


@undo_step("media.delete_copy")
def _delete_copy(params: dict[str, Any]) -> str | None:
    """Remove the partial copy an import made in the library's pool."""
    host = Host.objects.filter(pk=params["host_id"]).first()
    if host is None:
        return "its host is gone"
    try:
        hv.pool_lookup(host_connection(host), params["pool"]).volume(params["name"]).delete()
    except hv.NotFound:
        return "it was not there"
    return None


@undo_step("media.forget_import")
def _forget_import(params: dict[str, Any]) -> str | None:
    """Remove the row of an import that did not finish (its partial copy, if any, has an undo step of its own)."""
    removed, _ = IsoImage.objects.filter(pk=params["iso_id"], complete=False).delete()
    return None if removed else "it was already gone"


@job_task(services.ISO.import_job)
def import_iso(ctx: JobContext) -> dict[str, Any]:
    return services.iso_import_run(ctx)


@job_task(services.IMAGE.import_job)
def import_image(ctx: JobContext) -> dict[str, Any]:
    return services.iso_import_run(ctx)
