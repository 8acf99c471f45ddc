"""The job registry: which Celery task runs a kind of job, and the undo steps jobs record.

A job's kind (``vm.create``, ``storage.clone``...) names its task, ``kvmweb.job.<kind>``: services queue work by
kind and never import the app that runs it. A job that concerns a host goes to that host's queue
(``queue_of_host``), any other to the default one. Undo steps are functions registered here by name (``@undo_step``);
a job stores the names with their parameters, so a worker that starts after a crash can undo what a dead one did.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

UndoFn = Callable[[dict[str, Any]], str | None]
_UNDO_STEPS: dict[str, UndoFn] = {}


def task_name(kind: str) -> str:
    """The Celery task that runs jobs of ``kind``."""
    return f"kvmweb.job.{kind}"


def queue_default() -> str:
    """The queue of jobs that concern no host (and of Celery beat's periodic work)."""
    from django.conf import settings

    return str(settings.CELERY_TASK_DEFAULT_QUEUE)


def queue_of_host(host_id: int) -> str:
    """The queue of the jobs that concern one host: every host has its own, consumed by workers of its own
    (``manage.py workers``), so a slow or hung host holds up only its own jobs."""
    return f"{queue_default()}.host-{int(host_id)}"


def undo_step(name: str) -> Callable[[UndoFn], UndoFn]:
    """Register an undo handler ``fn(params) -> message | None``. It must be idempotent (may run twice)."""
    def register(fn: UndoFn) -> UndoFn:
        _UNDO_STEPS[name] = fn
        return fn

    return register


def load_app_modules() -> None:
    """Undo handlers and job tasks live in the apps' ``services`` and ``tasks`` modules: make sure those are
    imported (Celery's task autodiscovery runs in workers only, never in the web process)."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("services", "tasks")


def undo_handler(name: str) -> UndoFn | None:
    if name not in _UNDO_STEPS:
        load_app_modules()
    return _UNDO_STEPS.get(name)


def undo_record(step: str, description: str, /, **params: Any) -> dict[str, Any]:
    """An undo step as stored in ``Job.cleanup``: recorded BEFORE the work it undoes is done."""
    if undo_handler(step) is None:
        raise KeyError(f"unknown undo step {step!r}: register it with @undo_step")
    return {"step": step, "description": description, "params": params}
