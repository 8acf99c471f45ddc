"""Moving a VM to another host, as a ``vm.migrate`` job (see docs/migration.md).

``vm_migrate`` (in the request) checks everything it can before anything starts — permission, the destination
(chosen, or placed when none is given), the VM's state, storage the destination can reach or copy into, CD-ROM
media, the CPU — and queues the job; ``vm_migrate_run`` (in the worker) moves it: a running or paused VM live
(libvirt's migration job, polled for progress, aborted on cancel: the VM keeps running where it was), a shut-off
one offline (defined there, its disks streamed over, undefined here). On success the VM's record moves to the
destination host (the source sends no "undefined" event) and the VM's audience hears of it.
"""
from __future__ import annotations

import posixpath
import time
import uuid as uuid_mod
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, require_login, require_migrate
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.events.publish import publish
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import undo_step
from kvmweb.jobs.runner import JobCancelled, JobContext
from kvmweb.jobs.services import job_create, job_is_cancel_requested
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import vm_audience
from kvmweb.machines.services import vm_audited, vm_domain

from .placement import LOCAL_URIS, Need, host_verdict, place

KIND = "vm.migrate"
POLL = 0.3  # seconds between reads of a running migration job


def host_migration_address(host: Host) -> str:
    """Where ``host`` receives migrations: ``KVMWEB_MIGRATION_ADDRESSES[host.name]``, else its URI's host part."""
    return str(settings.KVMWEB_MIGRATION_ADDRESSES.get(host.name) or hv.migration_address(host.uri))


@dataclass
class MigrationPlan:
    """A checked move: where, how, which disks are copied, and what placement said."""

    source: Host
    dest: Host
    live: bool
    copy_storage: bool
    disks: list[str] = field(default_factory=list)  # targets (live copy) ...
    paths: list[str] = field(default_factory=list)  # ... and their paths
    address: str = ""
    placement: str = ""  # the placement's reason, when the destination was placed

    @property
    def how(self) -> str:
        return (("live" if self.live else "offline") + (", disks copied" if self.copy_storage else ", shared storage"))


def migration_job_running(vm: VirtualMachine) -> bool:
    return bool(Job.objects.filter(kind=KIND, target=str(vm.uuid), state__in=Job.UNFINISHED).exists())


def _file_known_absent(conn: hv.Connection, host: Host, path: str) -> bool:
    """Whether ``host`` surely lacks ``path``: a local host without the file, or a pool at its folder without it."""
    if hv.volume_by_path(conn, path) is not None:
        return False
    if host.uri.startswith(LOCAL_URIS):
        return not posixpath.isfile(path)
    return hv.pool_for_path(conn, path) is not None


def migration_plan(*, vm: VirtualMachine, dom: hv.Domain, dest: Host | None, copy_storage: bool,
                   live: bool | None = None) -> MigrationPlan:
    """Check a move of ``vm`` (its domain ``dom``) and say how it goes; every refusal in words, nothing changed."""
    source = vm.host
    state = dom.state()
    running = state in (hv.DomainState.RUNNING, hv.DomainState.PAUSED)
    if not running and state != hv.DomainState.SHUTOFF:
        raise ConflictError(f"{vm.name} is {state.label}: a VM moves while it runs (live) or when it is shut off.",
                            code="vm_state")
    if live is None:
        live = running
    if live and not running:
        raise ConflictError(f"{vm.name} is shut off: it moves offline (its definition and disks), not live.",
                            code="vm_state")
    if not live and running:
        raise ConflictError(f"{vm.name} runs: move it live, or shut it off first.", code="vm_state")
    snapshots = hv.snapshot_list(dom)
    if snapshots:
        raise ConflictError(f"{vm.name} has {len(snapshots)} snapshot(s): libvirt does not move them. Delete them "
                            "first (or back the VM up).", code="has_snapshots")
    doc = dom.definition()
    need = Need(memory_kib=doc.current_memory_kib or doc.memory_kib, vcpus=doc.vcpus or 1)
    placed = ""
    if dest is None:
        placement = place(need=need, exclude=source)
        if placement.host is None:
            raise ConflictError(f"No other host can take {vm.name}. {placement.reason}", code="no_host")
        dest, placed = placement.host, placement.reason
    if dest.pk == source.pk:
        raise ValidationError(f"{vm.name} is on {dest.name} already: choose another host.",
                              fields={"host": ["the VM is on this host"]})
    verdict = host_verdict(dest, need)
    if not verdict.fits:
        raise ConflictError(f"{vm.name} cannot move to {dest.name}: {verdict.reason}.", code="host_refused")
    if migration_job_running(vm):
        raise ConflictError(f"{vm.name} is being moved already: wait for that job to end.", code="migrating")
    plan = MigrationPlan(source=source, dest=dest, live=live, copy_storage=copy_storage, placement=placed)
    if live:
        plan.address = host_migration_address(dest)
        if not plan.address:
            raise ConflictError(f"{dest.name} has no migration address: its URI names no host; set "
                                f"KVMWEB_MIGRATION_ADDRESSES ({dest.name}=ADDRESS).", code="no_address")
    src_conn, dest_conn = host_connection(source), host_connection(dest)
    if doc.cpu_mode == "host-passthrough":
        here, there = hv.host_capacity(src_conn).cpu_model, hv.host_capacity(dest_conn).cpu_model
        if here != there:
            raise ConflictError(f"{vm.name} uses the host's CPU as it is (host-passthrough): {source.name} has a "
                                f"{here or 'different'} CPU, {dest.name} a {there or 'different'} one.",
                                code="cpu_mismatch")
    for disk in doc.disks:
        info = disk.info()
        if info.device == "cdrom" and info.source and _file_known_absent(dest_conn, dest, info.source):
            raise ConflictError(f"{dest.name} has no {info.source} (the CD-ROM {info.target} of {vm.name}): eject "
                                "it first, or put the ISO there.", code="cdrom_missing")
        path = info.own_source
        if not path:
            continue
        if copy_storage:
            if hv.volume_by_path(src_conn, path) is None:
                raise ConflictError(f"The disk {info.target} ({path}) is in no storage pool: it cannot be copied.",
                                    code="disk_unreachable")
            if hv.pool_for_path(dest_conn, path) is None:
                raise ConflictError(f"{dest.name} has no storage pool in {posixpath.dirname(path)}: a copy keeps "
                                    f"the disk's path, so define one there first.", code="disk_unreachable")
            if hv.volume_by_path(dest_conn, path) is not None:
                raise ConflictError(f"{dest.name} has a file {path} already: it is shared storage (move without "
                                    "copying) or another disk (not overwritten).", code="disk_exists")
            plan.disks.append(info.target)
            plan.paths.append(path)
        elif hv.volume_by_path(dest_conn, path) is None:
            raise ConflictError(f"{dest.name} cannot reach the disk {info.target} ({path}): copy the disks, or "
                                "keep them in a storage pool both hosts see.", code="disk_unreachable")
    return plan


def vm_migrate(*, actor: Actor, vm: VirtualMachine, dest_host: Host | None, copy_storage: bool = False,
               live: bool | None = None, parent: int | None = None) -> Job:
    """Queue the move of ``vm`` to ``dest_host`` (placed when None) as a ``vm.migrate`` job; returns the job."""
    require_login(actor)
    require_migrate(actor, vm, by_owners=settings.KVMWEB_MIGRATION_BY_OWNERS)
    dom = vm_domain(vm)
    plan = migration_plan(vm=vm, dom=dom, dest=dest_host, copy_storage=copy_storage, live=live)
    with vm_audited(actor, "vm.migrate", vm) as notes:
        job = job_create(
            actor=actor, kind=KIND, title=f"Move {vm.name} to {plan.dest.name} ({plan.how})",
            target_type="vm", target=str(vm.uuid), host=vm.host, send=parent is None,
            params={"host_id": plan.source.pk, "dest_id": plan.dest.pk, "uuid": str(vm.uuid), "live": plan.live,
                    "copy_storage": copy_storage, "disks": plan.disks, "paths": plan.paths,
                    "address": plan.address, "placement": plan.placement, "parent": parent},
        )
        notes.append(f"to {plan.dest.name} ({plan.how}): job {job.pk}")
    return job


# ------------------------------------------------------------------------------------------------ the job
@undo_step("fleet.delete_copy")
def _undo_copy(params: dict[str, Any]) -> str | None:
    """Delete a disk copy made on the destination — unless the VM is defined there (then it is the VM's disk)."""
    conn = hv.registry.connection(params["uri"])
    try:
        hv.domain_lookup(conn, params["uuid"])
        return "kept: the VM is defined there"
    except hv.DomainNotFound:
        pass
    volume = hv.volume_by_path(conn, params["path"])
    if volume is None:
        return "it was already gone"
    volume.delete()
    return None


def _cancelled(ctx: JobContext) -> bool:
    parent = ctx.params.get("parent")
    return job_is_cancel_requested(ctx.job_id) or bool(parent and job_is_cancel_requested(int(parent)))


def vm_migration_recheck(ctx: JobContext) -> VirtualMachine:
    """The job's actor may still move the VM (staff, or its managers where the site allows it)."""
    record: VirtualMachine | None = VirtualMachine.objects.select_related("host", "owner").filter(
        uuid=uuid_mod.UUID(ctx.params["uuid"])).first()
    if record is None:
        raise NotFoundError("The virtual machine no longer exists.")
    actor = get_user_model().objects.filter(pk=ctx.job.actor_id).first() if ctx.job.actor_id else None
    require_migrate(actor, record, by_owners=settings.KVMWEB_MIGRATION_BY_OWNERS)
    return record


def vm_migrate_run(ctx: JobContext) -> dict[str, Any]:
    """The ``vm.migrate`` job."""
    p = ctx.params
    vm = vm_migration_recheck(ctx)
    source = Host.objects.get(pk=p["host_id"])
    dest = Host.objects.get(pk=p["dest_id"])
    if vm.host_id != source.pk:
        raise ConflictError(f"{vm.name} is on {vm.host.name} now, not on {source.name}.")
    if p.get("placement"):
        ctx.log(p["placement"])
    src_conn, dest_conn = host_connection(source), host_connection(dest)
    dom = hv.domain_lookup(src_conn, p["uuid"])
    for path in p["paths"]:
        if hv.volume_by_path(dest_conn, path) is not None:  # checked when queued; a file that came since is not ours
            raise ConflictError(f"{dest.name} has a file {path} now: it is not overwritten.")
        ctx.undo("fleet.delete_copy", f"delete the copy of {path} on {dest.name}", uri=dest.uri, uuid=p["uuid"],
                 path=path)
    started = time.monotonic()
    if p["live"]:
        summary = _live(ctx, dom, src_conn, dest_conn, dest)
    else:
        summary = _offline(ctx, dom, dest_conn, dest)
    ctx.keep()
    _record_moved(vm, source, dest)
    seconds = time.monotonic() - started
    ctx.progress(100, f"{vm.name} runs on {dest.name} now ({summary}; {seconds:.1f} s in all)."
                 if p["live"] else f"{vm.name} is on {dest.name} now ({summary}).")
    return {"host": dest.name, "host_id": dest.pk, "seconds": round(seconds, 2)}


def _live(ctx: JobContext, dom: hv.Domain, src_conn: hv.Connection, dest_conn: hv.Connection, dest: Host) -> str:
    p = ctx.params
    volumes: list[hv.Volume] = []
    for path in p["paths"]:
        source = hv.volume_by_path(src_conn, path)
        if source is None:
            raise ConflictError(f"The disk {path} is gone.")
        volumes.append(hv.volume_prepare(source, dest_conn))
    if volumes:
        ctx.log(f"Made {len(volumes)} empty disk(s) on {dest.name} to copy into: {', '.join(p['paths'])}.")
    migration = hv.LiveMigration(dom, dest_conn, address=p["address"], copy_storage=p["copy_storage"],
                                 disks=tuple(p["disks"]), unsafe=settings.KVMWEB_MIGRATION_UNSAFE and not volumes,
                                 bandwidth_mib=settings.KVMWEB_MIGRATION_BANDWIDTH_MIB)
    ctx.progress(3, f"libvirt's migration job started: {dom.name} → {dest.name} (tcp://{p['address']}); it keeps "
                    "running here until the switch-over.")
    migration.start()
    aborted = False
    passes = 0
    while migration.running:
        if not aborted and _cancelled(ctx):
            migration.abort()
            aborted = True
            ctx.log("Cancel requested: stopping libvirt's migration job.", "warning")
        stats = migration.stats()
        if stats is not None and stats.active:
            if stats.percent:
                ctx.progress(3 + int(stats.percent * 0.94))
            if stats.iterations > passes:
                passes = stats.iterations
                ctx.log(f"Memory pass {passes}: sent {hv.human(stats.data_processed)}, "
                        f"{hv.human(stats.data_remaining)} to go of {hv.human(stats.data_total)}"
                        + (f"; disks {hv.human(stats.disk_processed)} of {hv.human(stats.disk_total)}"
                           if stats.disk_total else "") + ".")
        time.sleep(POLL)
    try:
        moved = migration.wait()
    except hv.HypervisorError as exc:
        if aborted:
            ctx.log(f"{dom.name} keeps running on {ctx.job.host.name if ctx.job.host else 'the source'}.")
            raise JobCancelled() from exc
        raise ConflictError(f"The migration failed: {exc.detail} {dom.name} keeps running where it was.") from exc
    done = hv.domain_migration_stats(moved, completed=True)
    if done is None:
        return "migrated"
    return (f"sent {hv.human(done.data_processed)} of memory in {done.iterations} pass(es)"
            + (f" and {hv.human(done.disk_processed)} of disks" if done.disk_processed else "")
            + f", downtime {done.downtime_ms} ms, libvirt's job {done.elapsed_ms / 1000:.1f} s")


def _offline(ctx: JobContext, dom: hv.Domain, dest_conn: hv.Connection, dest: Host) -> str:
    paths = tuple(ctx.params["paths"])
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.5 and done < total:
            return
        last[0] = now
        if _cancelled(ctx):
            raise JobCancelled()
        ctx.progress(3 + int(94 * done / total) if total else 50)

    ctx.progress(3, f"Defining {dom.name} on {dest.name}" + (f" and copying {len(paths)} disk(s)." if paths else "."))
    started = time.monotonic()
    hv.domain_migrate_offline(dom, dest_conn, disks=paths, progress=progress)
    return f"definition moved{' and ' + str(len(paths)) + ' disk(s) copied' if paths else ''} in " \
           f"{time.monotonic() - started:.1f} s"


def _record_moved(vm: VirtualMachine, source: Host, dest: Host) -> None:
    """The record follows the domain; the VM's audience hears of it (the source sends no "undefined")."""
    with transaction.atomic():
        VirtualMachine.objects.filter(pk=vm.pk, host=source).update(host=dest)
    audience = vm_audience(str(vm.uuid))
    try:
        state = hv.domain_lookup(host_connection(dest), str(vm.uuid)).state()
    except hv.HypervisorError:
        state = None
    publish({"kind": "vm", "uuid": str(vm.uuid), "name": vm.name, "event": "migrated",
             "state": state.slug if state else "unknown", "label": state.label if state else "unknown",
             "host": dest.name}, user_ids=audience)

