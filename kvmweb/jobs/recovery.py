"""No job stays "running" forever: when a Celery worker starts or stops, unfinished jobs it (or a worker that is
gone) was running are failed with a reason, after their recorded undo steps ran."""
from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from celery.signals import worker_ready, worker_shutdown

from .models import Job

log = logging.getLogger(__name__)


def stale_web_seconds() -> int:
    """Seconds without a sign of life before a web-driven job (an upload) counts as abandoned."""
    from django.conf import settings

    return int(settings.KVMWEB_STALE_UPLOAD_SECONDS)


def live_workers(timeout: float = 1.0) -> set[str]:
    try:
        replies = current_app.control.ping(timeout=timeout) or []
    except Exception:  # noqa: BLE001 - no broker: nobody is alive
        return set()
    return {name for reply in replies for name in reply}


def recover_on_start(hostname: str) -> list[int]:
    from .services import WEB_WORKER, jobs_fail_stale_web, jobs_fail_unfinished

    failed = jobs_fail_unfinished(
        worker=hostname, reason=f"The worker {hostname} restarted while this job ran; it was stopped and undone.",
    )
    failed += jobs_fail_stale_web(older_than_seconds=stale_web_seconds())
    others = Job.objects.filter(state=Job.State.RUNNING).exclude(worker__in=[hostname, WEB_WORKER]).exists()
    if others:
        alive = live_workers() | {hostname}
        failed += jobs_fail_unfinished(
            alive_workers=alive, reason="The worker running this job is gone; it was stopped and undone.",
        )
    return failed


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_kw: Any) -> None:
    hostname = getattr(sender, "hostname", "") or ""
    try:
        failed = recover_on_start(hostname)
    except Exception:  # noqa: BLE001 - never keep a worker from starting
        log.exception("stale job recovery failed")
        return
    if failed:
        log.warning("marked %d unfinished job(s) failed: %s", len(failed), failed)


@worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **_kw: Any) -> None:
    from .services import jobs_fail_unfinished

    hostname = getattr(sender, "hostname", "") or ""
    if not hostname:
        return
    try:
        jobs_fail_unfinished(worker=hostname, reason=f"The worker {hostname} stopped before this job finished.")
    except Exception:  # noqa: BLE001
        log.exception("stale job recovery at shutdown failed")
