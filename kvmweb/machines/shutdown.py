"""Shut down with a deadline: the ACPI request now, then a ``vm.shutdown`` job that waits for the guest to power off
and forces it off (``virsh destroy``) if it is still running after N seconds, as Proxmox VE's "shutdown timeout".

``vm_shutdown_deadline`` (in the request): permission → validation → the job queue must answer → the ACPI request
→ the job, queued. The deadline counts from the request, so a job that waited in the queue still forces off on time.
``vm_shutdown_run`` (in the Celery worker, ``tasks.py``): reads the state once a second, logs "Still running after
30 s" every 30 s, and ends with "The guest shut down after 12 s." or "Forced off after 60 s...". Cancelling the
job stops the waiting and forces nothing. The job holds a worker while it waits (at most N seconds).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobCancelled, JobContext
from kvmweb.jobs.services import job_create, job_log, job_queue_check

from .models import VirtualMachine
from .services import vm_audited, vm_checked, vm_recheck

KIND = "vm.shutdown"
MAX_FORCE_AFTER = 3600  # seconds
POLL = 1.0  # seconds between two reads of the guest's state
NOTE_EVERY = 30  # seconds between two "Still running" lines


def force_after_seconds(value: object) -> int:
    """Seconds before the forced power-off: a whole number from 1 to 3600; empty: ``KVMWEB_SHUTDOWN_TIMEOUT``."""
    if value is None or value == "":
        return int(settings.KVMWEB_SHUTDOWN_TIMEOUT)
    number: int | None = None
    if not isinstance(value, bool | float):
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
    if number is None or not 1 <= number <= MAX_FORCE_AFTER:
        rule = f"a whole number of seconds from 1 to {MAX_FORCE_AFTER}"
        raise ValidationError(f"Force off after: {rule}.", fields={"force_after": [rule]})
    return number


@dataclass(frozen=True)
class ShutdownJobResult:
    vm: VirtualMachine
    job: Job
    force_after: int

    @property
    def message(self) -> str:
        return (f"Shutdown requested: {self.vm.name} is forced off if it is still running after {self.force_after} s "
                f"(job #{self.job.pk}).")


def vm_shutdown_deadline(*, actor: Actor, vm: VirtualMachine, force_after: object = None) -> ShutdownJobResult:
    """Ask the guest to shut down (ACPI) and queue the job that forces it off after ``force_after`` seconds (empty:
    ``KVMWEB_SHUTDOWN_TIMEOUT``) if it is still running. Refused (503) before the guest is asked anything when the
    job queue does not answer."""
    dom = vm_checked(actor, vm, VmAction.OPERATE)
    seconds = force_after_seconds(force_after)
    with vm_audited(actor, "vm.shutdown", vm) as notes, transaction.atomic():
        if not dom.state().is_active:
            raise ConflictError(f"{vm.name} is not running.", code="not_running")
        job_queue_check()
        sent = time.time()
        dom.shutdown()
        job = job_create(
            actor=actor, kind=KIND, title=f"Shut down {vm.name} (force off after {seconds} s)", target_type="vm",
            target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "uuid": str(vm.uuid), "name": vm.name, "force_after": seconds,
                    "sent_at": sent},
        )
        job_log(job_id=job.pk, message=f"ACPI shutdown sent by {actor.get_username()}; {vm.name} is forced off if "
                                       f"it is still running after {seconds} s.")
        notes.append(f"force off after {seconds} s: job {job.pk}")
    return ShutdownJobResult(vm=vm, job=job, force_after=seconds)


# -- the job (runs in the Celery worker) ----------------------------------------------------------------------
def _gone(ctx: JobContext, name: str, elapsed: float) -> dict[str, Any]:
    ctx.log(f"{name} no longer exists (deleted after {elapsed:.0f} s): nothing to force off.", "warning")
    return {"forced": False, "seconds": round(elapsed)}


def _still_allowed(ctx: JobContext) -> bool:
    """The job's actor may still operate the VM (checked when the job starts and again before forcing off); False
    when the VM's record is gone. A share removed meanwhile fails the job (PermissionDeniedError)."""
    try:
        vm_recheck(actor_id=ctx.job.actor_id, uuid=str(ctx.params["uuid"]), action=VmAction.OPERATE,
                   what="force off")
    except NotFoundError:
        return False
    return True


def vm_shutdown_run(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    name, deadline, sent = str(p["name"]), int(p["force_after"]), float(p["sent_at"])
    host = Host.objects.get(pk=p["host_id"])
    if not _still_allowed(ctx):
        return _gone(ctx, name, time.time() - sent)
    try:
        dom = hv.domain_lookup(host_connection(host), str(p["uuid"]))
    except hv.DomainNotFound:
        return _gone(ctx, name, time.time() - sent)
    next_note, shown = NOTE_EVERY, -1
    while True:
        elapsed = time.time() - sent
        try:
            running = dom.state().is_active
        except hv.DomainNotFound:
            return _gone(ctx, name, elapsed)
        if not running:
            ctx.log(f"The guest shut down after {elapsed:.0f} s.")
            return {"forced": False, "seconds": round(elapsed)}
        if elapsed >= deadline:
            if not _still_allowed(ctx):
                return _gone(ctx, name, elapsed)
            try:
                dom.destroy()
            except hv.DomainNotFound:
                return _gone(ctx, name, elapsed)
            except hv.OperationInvalid:  # it stopped between the two calls
                if not dom.state().is_active:
                    ctx.log(f"The guest shut down after {elapsed:.0f} s.")
                    return {"forced": False, "seconds": round(elapsed)}
                raise
            ctx.log(f"Forced off after {elapsed:.0f} s: the guest had not shut down.", "warning")
            return {"forced": True, "seconds": round(elapsed)}
        percent = min(99, int(100 * elapsed / deadline))
        if elapsed >= next_note:
            mark = int(elapsed // NOTE_EVERY) * NOTE_EVERY
            ctx.progress(percent, f"Still running after {mark} s.")
            next_note = mark + NOTE_EVERY
        elif percent != shown:
            ctx.progress(percent)
        shown = percent
        try:
            ctx.check_cancelled()
        except JobCancelled:
            ctx.log(f"Stopped waiting after {elapsed:.0f} s: {name} was not forced off.", "warning")
            raise
        time.sleep(max(0.05, min(POLL, deadline - elapsed)))
