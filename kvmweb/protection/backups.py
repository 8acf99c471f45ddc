"""Backups of a VM's disks into the host's backup pool, their restore (as a new VM or over the VM) and retention.

``backup_create`` (in the request) checks and records a Backup being made, then queues the ``backup.create`` job;
``backup_create_run`` (in the worker) does the work: a RUNNING VM through libvirt's backup API in push mode (``virsh
backup-begin``: QEMU copies each disk as it was when the backup began while the guest keeps running; progress from
the domain job, ``virsh domjobinfo``; cancel = ``virsh domjobabort``), a shut-off one by a plain copy of each disk
(``virsh vol-clone`` into the backup pool, progress read from the new volume as the clone job does). Every target
volume's undo step is recorded before it is made, so a failed, cancelled or killed backup leaves no volume behind.
Then retention keeps the last N complete backups of that VM (:func:`backup_retention_apply`).

``backup_restore`` queues ``backup.restore``: as a NEW VM (the backup's definition through
``DomainDocument.clone_as``, its disks copied from the backup volumes into a pool the person may use; quota checked
and reserved like a clone) or OVER the VM it was made of (shut off, confirmed): each disk's content is copied into a
new volume of the disk's pool and format (as large as the disk is now, if it grew since), the definition is switched
to the new volumes, and only then are the old volumes deleted — a failure before that point leaves the VM as it was.

The backup pool (``KVMWEB_BACKUP_POOL`` in ``KVMWEB_BACKUP_DIR``) is a directory pool the portal makes on each host
on demand. Its volumes belong to no user's disk quota (no ``VolumeOwner`` rows): they are the portal's copies, kept
within the retention rule; restored disks are the person's and count like any disk.
"""
from __future__ import annotations

import time
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections
from django.utils import timezone

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, actor_id, is_staff, require_login, require_staff
from kvmweb.accounts.selectors import quota_reservation
from kvmweb.accounts.services import check_quota, quota_held
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import undo_step
from kvmweb.jobs.runner import JobContext
from kvmweb.jobs.services import job_create
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_audited, vm_checked, vm_recheck, vm_record_claim
from kvmweb.storage.clone import CopyWatcher
from kvmweb.storage.handles import open_pool_names, pool_handle
from kvmweb.storage.models import VolumeOwner
from kvmweb.storage.services import check_space

from .models import Backup, Retention
from .selectors import backup_get, backup_job, backup_keep, backup_vm_record

POLL = 0.5  # seconds between reads of a running backup job
RESTORE_MODES = ("new", "over")


def backup_pool(host: Host) -> hv.Pool:
    """The portal's backup pool on ``host``, created (folder, pool, autostart) the first time it is needed."""
    return hv.pool_ensure(host_connection(host), settings.KVMWEB_BACKUP_POOL, settings.KVMWEB_BACKUP_DIR)


def _audit(actor: Actor | None, action: str, backup: Backup):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="backup", target=f"{backup.vm_name} #{backup.pk}",
                   host=backup.host.uri, target_id=str(backup.pk))


# ------------------------------------------------------------------------------------------------ making one
@dataclass(frozen=True)
class BackupDisk:
    """A disk to back up: its target, where it is now, and the backup volume it goes to."""

    target: str
    source: str  # path
    format: str  # the disk's format
    capacity: int  # its virtual size
    allocation: int  # bytes it holds (what a copy writes)
    pool: str  # the pool it lives in ("" for a file in no pool)
    volume: str  # the backup volume's name

    def as_params(self) -> dict[str, Any]:
        return dict(vars(self))


def _disk_sizes(conn: hv.Connection, path: str) -> tuple[int, int, str]:
    """(capacity, allocation, pool) of a disk file: from its volume, or what its header says for a file in no
    pool."""
    volume = hv.volume_by_path(conn, path)
    if volume is not None:
        info = volume.info()
        return info.capacity, info.allocation, info.pool
    image = hv.volume_image_info(conn, path)
    if image is None:
        raise ValidationError(f"The disk file {path} cannot be read on the host.")
    return image.virtual_size, image.virtual_size, ""


def backup_plan(*, host: Host, dom: hv.Domain, vm_name: str, stamp: str, live: bool) -> list[BackupDisk]:
    """Which disks a backup copies: every writable disk with a file (CD-ROMs, read-only and shared disks stay out),
    each into a qcow2 volume ``<vm>.<stamp>.<target>.qcow2`` of the backup pool."""
    conn = host_connection(host)
    plan: list[BackupDisk] = []
    for disk in (d.info() for d in dom.definition().disks):
        source = disk.own_source
        if source is None:
            continue
        if disk.type != "file":
            raise ValidationError(f"Disk {disk.target} is a {disk.type} disk: the portal backs up disk files only.")
        capacity, allocation, pool = _disk_sizes(conn, source)
        if not live and not pool:
            raise ValidationError(f"Disk {disk.target} ({source}) is in no storage pool: a shut-off VM's disks "
                                  "are copied through their pool.")
        plan.append(BackupDisk(target=disk.target, source=source, format=disk.format or "raw",
                               capacity=capacity, allocation=allocation, pool=pool,
                               volume=f"{vm_name}.{stamp}.{disk.target}.qcow2"))
    if not plan:
        raise ValidationError(f"{vm_name} has no disk to back up (CD-ROMs and read-only disks are left out).")
    return plan


def backup_create(*, actor: Actor, vm: VirtualMachine) -> Job:
    """Queue a full backup of ``vm``'s disks (``virsh backup-begin`` for a running VM, a plain copy for a shut-off
    one) as a Job; returns the Job. The Backup row exists from now on, "being made"."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    if backup_job_running(vm):
        raise ConflictError(f"A backup of {vm.name} is being made already: wait for it to finish.",
                            code="backup_running")
    state = dom.state()
    live = state.is_active
    if live and state != hv.DomainState.RUNNING and state != hv.DomainState.PAUSED:
        raise ConflictError(f"{vm.name} is {state.label}: back it up when it runs or is shut off.", code="vm_state")
    stamp = f"{timezone.now():%Y%m%d-%H%M%S}-{uuid_mod.uuid4().hex[:4]}"
    plan = backup_plan(host=vm.host, dom=dom, vm_name=vm.name, stamp=stamp, live=live)
    pool = backup_pool(vm.host)
    need = sum(d.allocation for d in plan)
    check_space(pool, need, f"The backup ({hv.human(need)})")
    taken = {v.name for v in pool.volumes()}
    clash = [d.volume for d in plan if d.volume in taken]
    if clash:
        raise ConflictError(f"The backup pool holds {', '.join(clash)} already: try again.", code="backup_running")
    with vm_audited(actor, "vm.backup", vm) as notes:
        backup = Backup.objects.create(host=vm.host, vm_uuid=vm.uuid, vm_name=vm.name, owner_id=vm.owner_id,
                                       made_by_id=actor_id(actor), pool=pool.name, live=live,
                                       disks=[{"target": d.target, "volume": d.volume, "path": pool.volume_path(d.volume),
                                               "format": d.format, "capacity": d.capacity, "pool": d.pool}
                                              for d in plan],
                                       definition="")
        job = job_create(
            actor=actor, kind="backup.create", title=f"Back up {vm.name} ({'live' if live else 'copy'})",
            target_type="vm", target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "uuid": str(vm.uuid), "backup_id": backup.pk,
                    "disks": [d.as_params() for d in plan]},
        )
        notes.append(f"backup #{backup.pk}: job {job.pk}")
    return job


def backup_job_running(vm: VirtualMachine) -> bool:
    return bool(Job.objects.filter(kind="backup.create", target=str(vm.uuid), state__in=Job.UNFINISHED).exists())


def _conn(host_id: int) -> hv.Connection:
    return host_connection(Host.objects.get(pk=host_id))


@undo_step("protection.backup_failed")
def _undo_backup_row(params: dict[str, Any]) -> str | None:
    """A backup that did not complete: its row says failed (its volumes go by their own undo steps)."""
    Backup.objects.filter(pk=params["backup_id"]).exclude(state=Backup.State.COMPLETE).update(
        state=Backup.State.FAILED, finished=timezone.now(), size=0)
    return None


@undo_step("protection.delete_backup_volume")
def _undo_backup_volume(params: dict[str, Any]) -> str | None:
    """Delete a backup volume a job made (idempotent)."""
    try:
        pool = hv.pool_lookup(_conn(params["host_id"]), params["pool"])
        pool.volume(params["name"]).delete()
    except hv.NotFound:
        return "already gone"
    return None


def _abort_and_wait(dom: hv.Domain, *, patience: float = 30.0) -> None:
    """Stop libvirt's backup job and wait until it has ended (``domjobabort`` returns while QEMU still tears the job
    down): the targets are deleted next, and nothing may still write into them."""
    dom.job_abort()
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        job = dom.job()
        if job is None or not job.active:
            return
        time.sleep(POLL)


@undo_step("protection.abort_backup_job")
def _undo_backup_job(params: dict[str, Any]) -> str | None:
    """Stop a backup job libvirt may still run for a job that died (its targets are deleted next)."""
    try:
        dom = hv.domain_lookup(_conn(params["host_id"]), params["uuid"])
        job = dom.job()
        if job is None or job.operation != "backup":
            return "no backup job ran"
        _abort_and_wait(dom)
    except hv.DomainNotFound:
        return "the VM is gone"
    except hv.OperationInvalid:
        return "no backup job ran"
    return None


def _percent(done: int, total: int) -> int:
    return 5 + min(90, int(90 * done / max(total, 1)))


def backup_create_run(ctx: JobContext) -> dict[str, Any]:
    """The ``backup.create`` job: make each target volume (undo first), copy, record the Backup complete, apply
    retention."""
    p = ctx.params
    host_id = p["host_id"]
    ctx.undo("protection.backup_failed", f"mark backup #{p['backup_id']} failed", backup_id=p["backup_id"])
    vm_recheck(actor_id=ctx.job.actor_id, uuid=p["uuid"], action=VmAction.MANAGE, what="back up")
    conn = _conn(host_id)
    dom = hv.domain_lookup(conn, p["uuid"])
    backup = Backup.objects.select_related("host").get(pk=p["backup_id"])
    pool = hv.pool_lookup(conn, backup.pool)
    disks = [BackupDisk(**d) for d in p["disks"]]
    state = dom.state()
    live = state.is_active
    if live != backup.live:
        ctx.log(f"{dom.name} is {state.label} now: {'backing it up live' if live else 'copying its disks'}.")
    definition = dom.definition()
    ctx.progress(2, f"Backing up {dom.name}: {', '.join(d.target for d in disks)} → pool {pool.name}.")
    volumes: list[hv.Volume] = []
    for disk in disks:
        ctx.undo("protection.delete_backup_volume", f"delete the backup volume {pool.name}/{disk.volume}",
                 host_id=host_id, pool=pool.name, name=disk.volume)
    if live:
        volumes = _backup_live(ctx, dom, pool, disks)
    else:
        volumes = _backup_copy(ctx, conn, dom, pool, disks)
    ctx.check_cancelled()
    pool.refresh()
    rows: list[dict[str, Any]] = []
    for disk, volume in zip(disks, volumes, strict=True):
        info = volume.info(pool=pool.name)
        rows.append({"target": disk.target, "volume": info.name, "path": info.path, "format": disk.format,
                     "capacity": info.capacity, "size": info.allocation, "pool": disk.pool})
    close_old_connections()
    Backup.objects.filter(pk=backup.pk).update(
        state=Backup.State.COMPLETE, live=live, disks=rows, definition=definition.to_xml(),
        size=sum(int(r["size"]) for r in rows), finished=timezone.now())
    ctx.keep()  # complete: from here on, nothing of it is undone
    total = sum(int(r["size"]) for r in rows)
    ctx.progress(97, f"Backup #{backup.pk} is complete: {len(rows)} disk(s), {hv.human(total)}"
                     f"{' (made while it ran)' if live else ''}.")
    backup.refresh_from_db()
    expired = backup_retention_apply(backup=backup, actor=ctx.job.actor)
    keep = backup_keep(backup)
    if expired:
        ctx.log(f"Retention keeps the last {keep} backups of {backup.vm_name}: deleted "
                + ", ".join(f"#{pk}" for pk in expired) + ".")
    else:
        ctx.log(f"Retention keeps the last {keep} backups of {backup.vm_name}: nothing to delete.")
    ctx.progress(100)
    return {"backup_id": backup.pk, "size": total, "live": live, "expired": expired}


def _backup_live(ctx: JobContext, dom: hv.Domain, pool: hv.Pool, disks: list[BackupDisk]) -> list[hv.Volume]:
    """Push mode: the target volumes made first (qcow2, each disk's size), then one backup job for all of them."""
    volumes = [pool.create_volume(hv.VolumeSpec(name=d.volume, capacity=d.capacity, format="qcow2")) for d in disks]
    chosen = {d.target for d in disks}
    skip = tuple(d.target for d in (x.info() for x in dom.definition().disks)
                 if d.target not in chosen and d.device != "cdrom")
    spec = hv.BackupSpec(targets=tuple(hv.BackupTarget(disk=d.target, file=v.path) for d, v in zip(disks, volumes, strict=True)),
                         skip=skip)
    ctx.undo("protection.abort_backup_job", f"stop libvirt's backup job of {dom.name}",
             host_id=ctx.params["host_id"], uuid=dom.uuid)
    dom.backup_begin(spec)
    ctx.log(f"libvirt's backup job started (push mode): {dom.name} keeps running.")
    finished = False
    try:
        while True:
            ctx.check_cancelled()
            job = dom.job()
            if job is None or not job.active:
                break
            if job.total:
                ctx.progress(_percent(job.processed, job.total))
            time.sleep(POLL)
        finished = True
    finally:
        if not finished:
            try:
                _abort_and_wait(dom)
                ctx.log("Stopped libvirt's backup job.", "warning")
            except hv.HypervisorError:
                pass
    done = dom.job_completed()
    if done is not None and done.success is False:
        raise ConflictError(f"libvirt's backup job failed: {done.error or 'no reason given'}.")
    if done is not None:
        ctx.log(f"libvirt's backup job copied {hv.human(done.processed)} in {done.elapsed_ms / 1000:.1f} s.")
    return volumes


def _backup_copy(ctx: JobContext, conn: hv.Connection, dom: hv.Domain, pool: hv.Pool,
                 disks: list[BackupDisk]) -> list[hv.Volume]:
    """A shut-off VM: each disk copied into a qcow2 volume of the backup pool (libvirt runs qemu-img convert)."""
    total = sum(d.allocation for d in disks)
    done = 0
    volumes = []
    for disk in disks:
        ctx.check_cancelled()
        source = hv.volume_by_path(conn, disk.source)
        if source is None:
            raise ConflictError(f"The disk {disk.target} ({disk.source}) is gone.")
        ctx.log(f"Copying {disk.target}: {disk.source} → {disk.volume} ({hv.human(disk.allocation)}).")
        spec = hv.VolumeSpec(name=disk.volume, capacity=disk.capacity, format="qcow2")
        with CopyWatcher(ctx, pool, disk.volume, done, total):
            volumes.append(pool.clone_volume(source, spec))
        done += disk.allocation
        ctx.progress(_percent(done, total))
    if dom.state().is_active:
        raise ConflictError(f"{dom.name} was started during the copy: the copy may not be consistent. Back it up "
                            "again (a running VM is backed up live).")
    return volumes


# ------------------------------------------------------------------------------------------------ retention
def _delete_volumes(backup: Backup) -> list[str]:
    """Delete a backup's volumes (those already gone are skipped); returns what could not be deleted."""
    problems = []
    try:
        pool = hv.pool_lookup(host_connection(backup.host), backup.pool)
    except hv.NotFound:
        return []
    for disk in backup.disks:
        try:
            pool.volume(disk["volume"]).delete()
        except hv.NotFound:
            continue
        except hv.HypervisorError as exc:
            problems.append(f"{disk['volume']}: {exc.detail}")
    return problems


def backup_retention_apply(*, backup: Backup, actor: Actor | None = None) -> list[int]:
    """Keep the last N complete backups of ``backup``'s VM (N: :func:`selectors.backup_keep`), delete older ones'
    volumes and rows (each audited); returns the deleted backups' ids."""
    keep = backup_keep(backup)
    complete = Backup.objects.filter(vm_uuid=backup.vm_uuid, host_id=backup.host_id,
                                     state=Backup.State.COMPLETE).select_related("host").order_by("-created", "-pk")
    expired = []
    for old in list(complete)[keep:]:
        pk = int(old.pk)
        with _audit(actor, "backup.expire", old) as notes:
            notes.append(f"retention keeps {keep}")
            problems = _delete_volumes(old)
            if problems:
                raise ConflictError("Some backup volumes could not be deleted: " + "; ".join(problems))
            old.delete()
        expired.append(pk)
    return expired


def backup_retention_set(*, actor: Actor, keep: int, user_id: int | None = None, host: Host | None = None,
                         pool: str = "") -> Retention:
    """Staff: keep the last ``keep`` backups per VM of one user's VMs, or of backups in one pool of a host."""
    require_login(actor)
    require_staff(actor, "set backup retention")
    if keep < 1 or keep > 1000:
        raise ValidationError("Keep between 1 and 1000 backups.", fields={"keep": ["between 1 and 1000"]})
    if (user_id is None) == (not pool):
        raise ValidationError("Give either a user or a pool (with its host).",
                              fields={"user": ["a user or a pool"], "pool": ["a user or a pool"]})
    with audited(actor=actor, action="backup.retention", target_type="retention",
                 target=f"user {user_id}" if user_id else f"pool {pool}", host=host.uri if host else "") as notes:
        notes.append(f"keep {keep}")
        if user_id is not None:
            if not get_user_model().objects.filter(pk=user_id).exists():
                raise ValidationError("No such user.", fields={"user": ["no such user"]})
            made: Retention = Retention.objects.update_or_create(
                user_id=user_id, defaults={"keep": keep, "host": None, "pool": ""})[0]
            return made
        if host is None:
            raise ValidationError("Give the host of the pool.", fields={"host": ["required with a pool"]})
        rule: Retention = Retention.objects.update_or_create(user=None, host=host, pool=pool,
                                                             defaults={"keep": keep})[0]
        return rule


def backup_retention_delete(*, actor: Actor, rule: Retention) -> None:
    require_login(actor)
    require_staff(actor, "change backup retention")
    with audited(actor=actor, action="backup.retention_delete", target_type="retention",
                 target=f"user {rule.user_id}" if rule.user_id else f"pool {rule.pool}"):
        rule.delete()


# ------------------------------------------------------------------------------------------------ deleting one
@dataclass(frozen=True)
class BackupResult:
    message: str


def backup_delete(*, actor: Actor, backup: Backup) -> BackupResult:
    """Delete a backup: its volumes, then its row. Refused while a job makes or restores it."""
    backup = backup_get(actor=actor, pk=backup.pk, action=VmAction.MANAGE)
    pk = backup.pk
    with _audit(actor, "backup.delete", backup):
        if backup_job(backup) is not None:
            raise ConflictError(f"Backup #{pk} is in use by a job: wait for it to finish (or cancel it).",
                                code="backup_busy")
        problems = _delete_volumes(backup)
        if problems:
            raise ConflictError("Some backup volumes could not be deleted: " + "; ".join(problems))
        backup.delete()
    return BackupResult(message=f"Backup #{pk} of {backup.vm_name} deleted.")


# ------------------------------------------------------------------------------------------------ restoring
def _backup_domain_doc(backup: Backup) -> hv.DomainDocument:
    return hv.DomainDocument.from_xml(backup.definition)


def _restore_pool(actor: Actor, backup: Backup, pool: str) -> str:
    """The pool a restore as a new VM copies into: the one asked for (open to the person), else the pool of the
    original first disk when open to them."""
    if pool:
        pool_handle(actor=actor, host=backup.host, name=pool)  # NotFoundError unless open to the actor
        return pool
    opened = open_pool_names(actor, backup.host)
    for disk in backup.disks:
        if disk.get("pool") and (is_staff(actor) or disk["pool"] in opened):
            return str(disk["pool"])
    raise ValidationError("Choose a storage pool open to you for the restored disks.",
                          fields={"pool": ["a pool open to you"]})


def backup_restore(*, actor: Actor, backup: Backup, mode: str, name: str = "", pool: str = "",
                   confirm: bool = False) -> Job:
    """Queue a restore of ``backup``: ``new`` — as a new VM called ``name`` owned by ``actor``; ``over`` — over the
    VM it was made of (shut off; ``confirm`` required: its disks' contents are replaced)."""
    if mode not in RESTORE_MODES:
        raise ValidationError(f"Unknown restore mode {mode!r}: use new or over.", fields={"mode": list(RESTORE_MODES)})
    backup = backup_get(actor=actor, pk=backup.pk, action=VmAction.MANAGE)
    if backup.state != Backup.State.COMPLETE:
        raise ConflictError(f"Backup #{backup.pk} is {backup.get_state_display()}: only a complete backup can be "
                            "restored.", code="backup_incomplete")
    if backup_job(backup) is not None:
        raise ConflictError(f"Backup #{backup.pk} is in use by a job: wait for it to finish.", code="backup_busy")
    try:
        store = hv.pool_lookup(host_connection(backup.host), backup.pool)
        store.refresh()
        missing = [d["volume"] for d in backup.disks if not store.has_volume(d["volume"])]
    except hv.PoolNotFound:
        missing = [d["volume"] for d in backup.disks]
    if missing:
        raise ConflictError(f"Backup #{backup.pk} lost its volumes {', '.join(missing)}: it cannot be restored.",
                            code="backup_damaged")
    if mode == "new":
        return _restore_new(actor, backup, name, pool)
    return _restore_over(actor, backup, confirm)


def _restore_new(actor: Actor, backup: Backup, name: str, pool: str) -> Job:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the new VM a name.", fields={"name": ["required"]})
    try:
        hv.validate_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"name": [exc.detail]}) from None
    conn = host_connection(backup.host)
    if hv.domain_exists(conn, name):
        raise ConflictError(f"A virtual machine named {name} already exists on {backup.host}.", code="name_taken")
    pool_name = _restore_pool(actor, backup, pool)
    target_pool = hv.pool_lookup(conn, pool_name)
    doc = _backup_domain_doc(backup)
    vcpus, memory_mib = doc.vcpus or 1, doc.memory_mib
    disk_bytes = sum(int(d["capacity"]) for d in backup.disks)
    need = sum(int(d.get("size", 0)) for d in backup.disks)
    check_space(target_pool, need, f"The restored disks ({hv.human(need)})")
    check_quota(actor, vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_bytes=disk_bytes)
    taken = {v.name for v in target_pool.volumes()}
    disks = []
    for disk in backup.disks:
        ext = "qcow2" if disk["format"] == "qcow2" else "img"
        new_name = hv.file_name_for(name, ext, taken)
        taken.add(new_name)
        disks.append({**disk, "new_name": new_name})
    with _audit(actor, "backup.restore_new", backup) as notes, \
            quota_held(actor, vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_bytes=disk_bytes):
        job = job_create(
            actor=actor, kind="backup.restore", title=f"Restore backup #{backup.pk} of {backup.vm_name} → {name}",
            target_type="backup", target=str(backup.pk), host=backup.host,
            params={"host_id": backup.host.pk, "backup_id": backup.pk, "mode": "new", "name": name,
                    "pool": pool_name, "owner_id": actor_id(actor), "disks": disks,
                    "quota": quota_reservation(vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_bytes=disk_bytes)},
        )
        notes.append(f"{name}: job {job.pk}")
    return job


def _restore_over(actor: Actor, backup: Backup, confirm: bool) -> Job:
    vm = backup_vm_record(backup)
    if vm is None:
        raise ConflictError(f"{backup.vm_name} no longer exists: restore the backup as a new VM.", code="vm_gone")
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    state = dom.state()
    if state.is_active:
        raise ConflictError(f"{vm.name} is {state.label}: shut it off before restoring a backup over it.",
                            code="vm_running")
    if not confirm:
        raise ValidationError(f"Restoring over {vm.name} replaces the contents of its disks with the backup's: "
                              "confirm it.", fields={"confirm": ["confirm replacing the disks' contents"]})
    current = {d.target: d for d in (x.info() for x in dom.definition().disks) if d.device == "disk"}
    conn = host_connection(vm.host)
    disks = []
    for disk in backup.disks:
        now = current.get(disk["target"])
        if now is None or not now.source:
            continue
        volume = hv.volume_by_path(conn, now.source)
        if volume is None:
            raise ValidationError(f"Disk {disk['target']} ({now.source}) is in no storage pool: the portal can only "
                                  "restore into disks that live in pools.")
        info = volume.info()
        disks.append({**disk, "current_path": info.path, "current_pool": info.pool, "current_name": info.name,
                      "current_format": info.format, "current_capacity": info.capacity})
    if not disks:
        raise ConflictError(f"{vm.name} has none of the disks this backup holds any more.", code="no_disks")
    for pool_name in {d["current_pool"] for d in disks}:
        need = sum(int(d.get("size", 0)) for d in disks if d["current_pool"] == pool_name)
        check_space(hv.pool_lookup(conn, pool_name), need, f"The restored disks ({hv.human(need)})")
    with vm_audited(actor, "vm.backup_restore", vm) as notes:
        job = job_create(
            actor=actor, kind="backup.restore", title=f"Restore backup #{backup.pk} over {vm.name}",
            target_type="vm", target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "backup_id": backup.pk, "mode": "over", "uuid": str(vm.uuid),
                    "disks": disks},
        )
        notes.append(f"backup #{backup.pk}: job {job.pk}")
    return job


def backup_restore_run(ctx: JobContext) -> dict[str, Any]:
    """The ``backup.restore`` job."""
    p = ctx.params
    backup = Backup.objects.select_related("host").get(pk=p["backup_id"])
    actor = get_user_model().objects.filter(pk=ctx.job.actor_id).first()
    if actor is None:
        raise NotFoundError("The person who started this restore no longer exists.")
    backup_get(actor=actor, pk=backup.pk, action=VmAction.MANAGE)  # still allowed?
    if p["mode"] == "new":
        return _restore_new_run(ctx, backup)
    return _restore_over_run(ctx, backup)


def _copy_from_backup(ctx: JobContext, conn: hv.Connection, backup: Backup, disk: dict[str, Any], pool: hv.Pool,
                      name: str, fmt: str, capacity: int, done: int, total: int) -> hv.Volume:
    source = hv.pool_lookup(conn, backup.pool).volume(disk["volume"])
    ctx.undo("storage.delete_volume", f"delete the restored volume {pool.name}/{name}", host_id=backup.host_id,
             pool=pool.name, name=name)
    ctx.log(f"Copying {disk['target']}: backup volume {disk['volume']} → {pool.name}/{name} "
            f"({hv.human(int(disk.get('size', 0)))}).")
    spec = hv.VolumeSpec(name=name, capacity=int(disk["capacity"]), format=fmt)
    with CopyWatcher(ctx, pool, name, done, total):
        new = pool.clone_volume(source, spec)
    if new.spec().capacity < capacity:
        new.resize(capacity)
        ctx.log(f"{disk['target']} had grown since the backup: the restored volume is {hv.human(capacity)} too.")
    return new


def _restore_new_run(ctx: JobContext, backup: Backup) -> dict[str, Any]:
    p = ctx.params
    conn = _conn(backup.host_id)
    name = p["name"]
    pool = hv.pool_lookup(conn, p["pool"])
    ctx.progress(2, f"Restoring backup #{backup.pk} of {backup.vm_name} as {name}.")
    total = sum(int(d.get("size", 0)) for d in p["disks"])
    done = 0
    new_paths: dict[str, str] = {}
    formats: dict[str, str] = {}
    for disk in p["disks"]:
        ctx.check_cancelled()
        if pool.has_volume(disk["new_name"]):
            raise ConflictError(f"A volume named {disk['new_name']} appeared in pool {pool.name} meanwhile.")
        new = _copy_from_backup(ctx, conn, backup, disk, pool, disk["new_name"], disk["format"],
                                int(disk["capacity"]), done, total)
        VolumeOwner.objects.update_or_create(host_id=backup.host_id, pool=pool.name, name=disk["new_name"],
                                             defaults={"owner_id": p["owner_id"]})
        new_paths[disk["target"]] = new.path
        formats[disk["target"]] = disk["format"]
        done += int(disk.get("size", 0))
    ctx.check_cancelled()
    new_uuid = str(uuid_mod.uuid4())
    taken_macs = [nic.mac for row in hv.domain_nics_all(conn) for nic in row.nics]
    doc = _backup_domain_doc(backup).clone_as(name=name, uuid=new_uuid, disk_sources=new_paths,
                                               disk_formats=formats, taken_macs=taken_macs)
    if doc.nvram:
        ctx.log("The VM's NVRAM is not part of the backup: libvirt makes a fresh one at its first boot.")
    ctx.undo("machines.undefine", f"undefine {name}", uri=conn.uri, uuid=new_uuid)
    dom = hv.domain_define(conn, doc)
    close_old_connections()
    vm_record_claim(host=Host.objects.get(pk=backup.host_id), uuid=dom.uuid, name=dom.name, owner_id=p["owner_id"])
    ctx.progress(100, f"{name} is defined ({dom.uuid}) from backup #{backup.pk}.")
    return {"uuid": dom.uuid, "name": dom.name, "volumes": list(new_paths.values()), "mode": "new"}


@undo_step("protection.redefine")
def _undo_redefine(params: dict[str, Any]) -> str | None:
    """Put a VM's definition back as it was before a restore switched its disks."""
    try:
        dom = hv.domain_lookup(_conn(params["host_id"]), params["uuid"])
    except hv.DomainNotFound:
        return "the VM is gone"
    dom.redefine(hv.DomainDocument.from_xml(params["xml"]))
    return None


def _restore_over_run(ctx: JobContext, backup: Backup) -> dict[str, Any]:
    p = ctx.params
    vm_recheck(actor_id=ctx.job.actor_id, uuid=p["uuid"], action=VmAction.MANAGE, what="restore a backup over")
    conn = _conn(backup.host_id)
    dom = hv.domain_lookup(conn, p["uuid"])
    if dom.state().is_active:
        raise ConflictError(f"{dom.name} was started: shut it off before restoring a backup over it.")
    ctx.progress(2, f"Restoring backup #{backup.pk} over {dom.name}.")
    total = sum(int(d.get("size", 0)) for d in p["disks"])
    done = 0
    switched: dict[str, tuple[str, str]] = {}  # target → (new path, format)
    for disk in p["disks"]:
        ctx.check_cancelled()
        pool = hv.pool_lookup(conn, disk["current_pool"])
        stem, ext = hv.split_ext(disk["current_name"])
        name = hv.file_name_for(dom.name, ext or "qcow2", {v.name for v in pool.volumes()})
        new = _copy_from_backup(ctx, conn, backup, disk, pool, name, disk["current_format"],
                                int(disk["current_capacity"]), done, total)
        switched[disk["target"]] = (new.path, disk["current_format"])
        done += int(disk.get("size", 0))
    ctx.check_cancelled()
    if dom.state().is_active:
        raise ConflictError(f"{dom.name} was started during the restore: it was stopped and undone.")
    before = dom.definition()
    ctx.undo("protection.redefine", f"put {dom.name}'s definition back", host_id=backup.host_id, uuid=dom.uuid,
             xml=before.to_xml())
    with dom.editing() as doc:
        for device in doc.disks:
            info = device.info()
            if info.target in switched:
                path, fmt = switched[info.target]
                device.set_source(path)
                device.format = fmt
    ctx.log(f"{dom.name} now uses the restored volumes.")
    ctx.keep()  # the VM uses the new volumes: the old ones go now, and nothing is undone any more
    for disk in p["disks"]:
        path, _fmt = switched[disk["target"]]
        new_name = path.rsplit("/", 1)[-1]
        owner = VolumeOwner.objects.filter(host_id=backup.host_id, pool=disk["current_pool"],
                                           name=disk["current_name"]).first()
        try:
            hv.pool_lookup(conn, disk["current_pool"]).volume(disk["current_name"]).delete()
            ctx.log(f"Deleted the replaced volume {disk['current_pool']}/{disk['current_name']}.")
        except hv.HypervisorError as exc:
            ctx.log(f"Could not delete the replaced volume {disk['current_name']}: {exc.detail}", "warning")
        if owner is not None:
            VolumeOwner.objects.update_or_create(host_id=backup.host_id, pool=disk["current_pool"], name=new_name,
                                                 defaults={"owner_id": owner.owner_id})
            owner.delete()
    ctx.progress(100, f"{dom.name}'s disks hold backup #{backup.pk} now.")
    return {"uuid": dom.uuid, "name": dom.name, "mode": "over",
            "volumes": [path for path, _fmt in switched.values()]}
