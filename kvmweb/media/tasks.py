"""Undo steps of the ISO library's jobs (an upload is a job driven by the browser's requests, not by Celery)."""
from __future__ import annotations

from typing import Any

from kvmweb import hypervisor as hv
from kvmweb.jobs.runner import undo_step

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
