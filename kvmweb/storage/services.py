"""Every change to storage: pools (staff), volumes, a VM's disks and CD-ROM media, boot order.

Each service: permission check → validation (names, sizes, free space) → libvirt call → audit row. Nothing a user
typed reaches libvirt unchecked, and no name can point outside its pool.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, actor_id, job_may_view, require_login, require_staff
from kvmweb.accounts.services import host_setup_step, quota_held
from kvmweb.audit.models import AuditEntry
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import undo_record, undo_step
from kvmweb.jobs.services import (
    job_cancel, job_cancelled, job_fail, job_open, job_progress, job_succeed, readable, run_cleanup,
)
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_audited, vm_checked
from kvmweb.media.selectors import iso_get

from .models import PoolAccess, VolumeOwner
from .handles import pool_handle, volume_handle
from .selectors import VolumeRow, volume_get

human = hv.human


def valid_volume_name(name: str, *, field_name: str = "name") -> str:
    try:
        return hv.validate_volume_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={field_name: [exc.detail]}) from None


def staff_only(actor: Actor) -> None:
    """Pool management is for staff: 403 for anyone else (before any input is looked at)."""
    require_staff(actor, "manage storage pools")


def _audit_pool(actor: Actor, action: str, host: Host, name: str):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="pool", target=name, host=host.uri)


def _audit_volume(actor: Actor, action: str, host: Host, pool: str, name: str):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="volume", target=f"{pool}/{name}", host=host.uri)


# ------------------------------------------------------------------------------------------------ pools (staff)
def pool_define(*, actor: Actor, host: Host, name: str, path: str, autostart: bool = True) -> hv.PoolInfo:
    """``virsh pool-define-as NAME dir --target PATH`` + ``pool-build`` + ``pool-start`` (+ ``pool-autostart``)."""
    staff_only(actor)
    spec = hv.PoolSpec(name=name.strip(), target_path=path.strip())
    try:
        spec.validate()
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail) from None
    conn = host_connection(host)
    with _audit_pool(actor, "pool.define", host, spec.name) as notes:
        if any(p.name == spec.name for p in hv.pool_list(conn)):
            raise ConflictError(f"A storage pool named {spec.name} already exists on {host}.", code="name_taken")
        pool = hv.pool_define(conn, spec)
        if autostart:
            pool.set_autostart(True)
        notes.append(spec.target_path)
        return pool.info()


def _pool_action(actor: Actor, host: Host, name: str) -> hv.Pool:
    staff_only(actor)
    return pool_handle(actor=actor, host=host, name=name)


def _pool_change(actor: Actor, host: Host, name: str, *, action: str, must_run: bool, refusal: str,
                 change: Callable[[hv.Pool], None]) -> None:
    """One staff verb on a pool that needs it running (``must_run``) or stopped, refused otherwise."""
    pool = _pool_action(actor, host, name)
    with _audit_pool(actor, action, host, name):
        if pool.is_active() != must_run:
            raise ConflictError(refusal.format(name=name), code="not_running" if must_run else "already_running")
        change(pool)


def pool_start(*, actor: Actor, host: Host, name: str) -> None:
    _pool_change(actor, host, name, action="pool.start", must_run=False, change=hv.Pool.start,
                 refusal="Pool {name} is already running.")


def pool_stop(*, actor: Actor, host: Host, name: str) -> None:
    """``virsh pool-destroy``: the pool stops; its folder and files stay."""
    _pool_change(actor, host, name, action="pool.stop", must_run=True, change=hv.Pool.stop,
                 refusal="Pool {name} is not running.")


def pool_refresh(*, actor: Actor, host: Host, name: str) -> None:
    _pool_change(actor, host, name, action="pool.refresh", must_run=True, change=hv.Pool.refresh,
                 refusal="Pool {name} is not running: start it first.")


def pool_set_autostart(*, actor: Actor, host: Host, name: str, enabled: bool) -> None:
    pool = _pool_action(actor, host, name)
    with _audit_pool(actor, "pool.autostart_on" if enabled else "pool.autostart_off", host, name):
        pool.set_autostart(enabled)


@dataclass
class PoolDeleteResult:
    deleted_volumes: list[str] = field(default_factory=list)
    folder_removed: bool = False


def pool_delete(*, actor: Actor, host: Host, name: str, delete_volumes: bool = False) -> PoolDeleteResult:
    """Stop and undefine a pool. A pool holding volumes is refused unless ``delete_volumes`` (staff confirmed);
    a volume a VM uses is never deleted. The folder is removed when it is left empty."""
    pool = _pool_action(actor, host, name)
    result = PoolDeleteResult()
    with _audit_pool(actor, "pool.delete_with_volumes" if delete_volumes else "pool.delete", host, name) as notes:
        volumes = pool.volumes() if pool.is_active() else []
        if volumes and not delete_volumes:
            raise ConflictError(
                f"Pool {name} holds {len(volumes)} volume(s) ({', '.join(v.name for v in volumes[:5])}"
                f"{', ...' if len(volumes) > 5 else ''}): confirm deleting them, or delete them first.",
                code="pool_not_empty",
            )
        users = hv.domain_disk_users(host_connection(host))
        busy = [f"{v.name} (used by {', '.join(u.domain_name for u in users[v.path])})"
                for v in volumes if v.path in users]
        if busy:
            raise ConflictError(f"Pool {name} holds volumes VMs use: {'; '.join(busy)}. Detach them first.",
                                code="volume_in_use")
        for vol in volumes:
            pool.volume(vol.name).delete()
            result.deleted_volumes.append(vol.name)
        VolumeOwner.objects.filter(host=host, pool=name).delete()
        if pool.is_active():
            pool.stop()
        try:
            pool.delete_folder()
            result.folder_removed = True
        except hv.HypervisorError as exc:
            notes.append(f"folder kept: {exc.detail}")
        pool.undefine()
        PoolAccess.objects.filter(host=host, pool=name).delete()
        notes.extend(f"deleted {v}" for v in result.deleted_volumes)
    return result


def pool_set_access(*, actor: Actor, host: Host, name: str, everyone: bool,
                    users: Iterable[AbstractBaseUser] = ()) -> PoolAccess | None:
    """Open a pool to everyone or to chosen users (an empty choice closes it)."""
    staff_only(actor)
    pool_handle(actor=actor, host=host, name=name)
    chosen = list(users)
    with _audit_pool(actor, "pool.access", host, name) as notes:
        if not everyone and not chosen:
            PoolAccess.objects.filter(host=host, pool=name).delete()
            notes.append("closed")
            return None
        access, _ = PoolAccess.objects.update_or_create(host=host, pool=name, defaults={"everyone": everyone})
        access.users.set(chosen)
        notes.append("everyone" if everyone else "users: " + ", ".join(u.get_username() for u in chosen))
        return access


@dataclass(frozen=True)
class DefaultPoolResult:
    pool: str
    path: str
    created: bool  # defined (and built, started, autostarted) now
    started: bool  # it existed, stopped, and was started now
    opened: bool  # opened to every user now

    @property
    def message(self) -> str:
        state = ("created" if self.created else "started" if self.started else "ready")
        opened = "; opened to every user" if self.opened else ""
        return f"Storage pool {self.pool} ({self.path}) {state}{opened}."


@host_setup_step("storage.default_pool")
def pool_default_ensure(*, actor: Actor, host: Host) -> DefaultPoolResult:
    """Newcomer defaults (``manage.py bootstrap``): the host has libvirt's conventional directory pool, found as
    virt-install finds it — the pool named ``KVMWEB_DEFAULT_POOL``, else any pool on ``KVMWEB_DEFAULT_POOL_DIR`` —
    or made as virt-install makes it (defined, built, started, autostarted); a stopped one is started. Unless
    ``KVMWEB_DEFAULT_POOL_OPEN`` is off it is opened to every user, once: a pool whose access staff have set (or
    closed) before keeps what they chose."""
    staff_only(actor)
    name, path = settings.KVMWEB_DEFAULT_POOL, settings.KVMWEB_DEFAULT_POOL_DIR
    spec = hv.PoolSpec(name=name, target_path=path)
    try:
        spec.validate()
    except hv.InvalidRequest as exc:
        raise ValidationError(f"KVMWEB_DEFAULT_POOL / KVMWEB_DEFAULT_POOL_DIR: {exc.detail}") from None
    conn = host_connection(host)
    with _audit_pool(actor, "pool.default", host, name) as notes:
        pools = hv.pool_list(conn)
        found = next((p for p in pools if p.name == name), None) or \
            next((p for p in pools if p.target_path and p.target_path.rstrip("/") == path.rstrip("/")), None)
        created = started = False
        if found is None:
            hv.pool_ensure(conn, name, path)
            created = True
        else:
            name, path = found.name, found.target_path or path
            if not found.active:
                hv.pool_ensure(conn, name, path)
                started = True
        notes.append(f"{name} {path}" + (" created" if created else " started" if started else ""))
    opened = False
    if settings.KVMWEB_DEFAULT_POOL_OPEN:
        decided = PoolAccess.objects.filter(host=host, pool=name).exists() or AuditEntry.objects.filter(
            action="pool.access", target_type="pool", target=name, host=host.uri, ok=True).exists()
        if not decided:
            with _audit_pool(actor, "pool.access", host, name) as notes:
                PoolAccess.objects.create(host=host, pool=name, everyone=True)
                notes.append("everyone (newcomer default)")
            opened = True
    return DefaultPoolResult(pool=name, path=path, created=created, started=started, opened=opened)


# ------------------------------------------------------------------------------------------------ volumes
def check_space(pool: hv.Pool, needed: int, what: str) -> None:
    info = pool.info()
    if needed > info.available:
        raise ValidationError(
            f"{what} needs {human(needed)} but pool {pool.name} has only {human(info.available)} free.",
            fields={"size": ["beyond the pool's free space"]}, code="no_space",
        )


def _refuse_taken(pool: hv.Pool, name: str) -> None:
    if pool.has_volume(name):
        raise ConflictError(f"A volume named {name} already exists in pool {pool.name}.", code="name_taken")


def _user_pool(actor: Actor, host: Host, name: str) -> hv.Pool:
    require_login(actor)
    pool = pool_handle(actor=actor, host=host, name=name)
    if not pool.is_active():
        raise ConflictError(f"Pool {name} is not running.", code="not_running")
    return pool


def volume_owner_record(*, host: Host, pool: str, name: str, owner_id: int | None) -> None:
    """Remember whose a volume is (it counts in their disk quota and they may use it)."""
    VolumeOwner.objects.update_or_create(host=host, pool=pool, name=name, defaults={"owner_id": owner_id})


def _record_owner(actor: Actor, host: Host, pool: str, name: str) -> None:
    volume_owner_record(host=host, pool=pool, name=name, owner_id=actor_id(actor))


def volume_create(*, actor: Actor, host: Host, pool: str, name: str, size: str, fmt: str = "qcow2") -> hv.VolumeInfo:
    """``qemu-img create -f FMT NAME SIZE`` in a pool open to ``actor``; the volume becomes theirs."""
    handle = _user_pool(actor, host, pool)
    valid_volume_name(name)
    if fmt not in hv.VOLUME_FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}: use qcow2 or raw.", fields={"format": ["qcow2 or raw"]})
    capacity = hv.parse_size(size).amount
    with _audit_volume(actor, "volume.create", host, pool, name) as notes, \
            quota_held(actor, disk_bytes=capacity, fields={"disk": "size"}):
        _refuse_taken(handle, name)
        check_space(handle, capacity, f"A {human(capacity)} volume")
        volume = handle.create_volume(hv.VolumeSpec(name=name, capacity=capacity, format=fmt))
        try:
            _record_owner(actor, host, pool, name)
        except Exception:
            volume.delete()
            raise
        notes.append(f"{fmt} {human(capacity)}")
        return volume.info(pool=pool)


@dataclass(frozen=True)
class ResizeResult:
    volume: str
    old_capacity: int
    new_capacity: int
    online: bool  # grown through the running guest's block device
    guest_note: str  # whether and when the guest sees the new size

    @property
    def message(self) -> str:
        return f"{self.volume} grew from {human(self.old_capacity)} to {human(self.new_capacity)}. {self.guest_note}"


def _guest_note(bus: str, online: bool) -> str:
    if not online:
        return "The VM sees the new size when it next starts; grow the partition and file system inside it then."
    if bus in ("virtio", "scsi"):
        return (f"The guest was told at once ({bus} disks report a capacity change to the running guest); grow the "
                "partition and file system inside it.")
    return (f"The disk grew, but a guest usually notices a {bus or 'non-virtio'} disk's new size only after a "
            "reboot.")


def _resize(actor: Actor, host: Host, pool: hv.Pool, volume: hv.Volume, row: VolumeRow,
            size: str) -> ResizeResult:
    request = hv.parse_size(size, allow_relative=True)
    old = row.info.capacity
    new = request.target(old)
    if new < old:
        raise ValidationError(
            f"{human(new)} is smaller than the disk's {human(old)}. Shrinking is refused: it cuts off the end of "
            "the disk and destroys whatever data lives there.", fields={"size": ["shrinking is refused"]},
            code="shrink_refused",
        )
    if new == old:
        raise ValidationError(f"The disk is already {human(old)}.", fields={"size": ["no change"]})
    check_space(pool, new - old, f"Growing by {human(new - old)}")
    running: list[tuple[hv.Domain, str]] = []
    conn = host_connection(host)
    for use in row.users:
        try:
            dom = hv.domain_lookup(conn, use.domain_uuid)
        except hv.DomainNotFound:
            continue
        if dom.state().is_active:
            running.append((dom, use.target))
    if len(running) > 1:
        raise ConflictError("More than one running VM uses this volume; it cannot be grown safely.",
                            code="volume_in_use")
    with _audit_volume(actor, "volume.resize", host, pool.name, row.name) as notes, \
            quota_held(actor, disk_bytes=new - old, fields={"disk": "size"}):
        if running:
            dom, target = running[0]
            dom.block_resize(target, new)
            disk = dom.document().disk(target)
            bus = (disk.bus or "") if disk is not None else ""
            notes.append(f"online via {dom.name}/{target}")
        else:
            volume.resize(new)
            bus = ""
        notes.append(f"{old} -> {new} bytes")
    return ResizeResult(volume=row.name, old_capacity=old, new_capacity=new, online=bool(running),
                        guest_note=_guest_note(bus, bool(running)))


def volume_resize(*, actor: Actor, host: Host, pool: str, name: str, size: str) -> ResizeResult:
    """``qemu-img resize NAME +10G`` (or an absolute size); grow only. A disk of a running VM grows online."""
    row = volume_get(actor=actor, host=host, pool=pool, name=name)
    handle, volume = volume_handle(actor=actor, host=host, pool=pool, name=name)
    _refuse_uploading(host, pool, name)
    return _resize(actor, host, handle, volume, row, size)


def volume_delete(*, actor: Actor, host: Host, pool: str, name: str) -> None:
    """Delete a volume no VM uses (refused naming the VMs that do) and no linked clone reads from."""
    row = volume_get(actor=actor, host=host, pool=pool, name=name)
    handle, volume = volume_handle(actor=actor, host=host, pool=pool, name=name)
    with _audit_volume(actor, "volume.delete", host, pool, name):
        if row.in_use:
            raise ConflictError(
                f"{name} is a disk of {row.used_by_names}: detach it there first.", code="volume_in_use",
            )
        overlays = [v.name for v in handle.volumes() if v.backing_path == row.info.path]
        if overlays:
            raise ConflictError(
                f"{name} is the backing file of {', '.join(overlays)} (linked clones read from it): delete those "
                "first.", code="volume_in_use",
            )
        volume.delete()
        VolumeOwner.objects.filter(host=host, pool=pool, name=name).delete()
        upload = _unfinished_upload(host, pool, name)
        if upload is not None:  # its undo (delete the volume) is done: drop it, never to hit a later namesake
            Job.objects.filter(pk=upload.pk).update(cleanup=[])
            job_cancelled(job_id=upload.pk, message="Upload abandoned: the unfinished volume was deleted.")


def volume_download(*, actor: Actor, host: Host, pool: str, name: str) -> tuple[hv.VolumeInfo, Iterator[bytes]]:
    """The volume's file streamed through libvirt (``virsh vol-download``), never whole in memory."""
    row = volume_get(actor=actor, host=host, pool=pool, name=name)
    _handle, volume = volume_handle(actor=actor, host=host, pool=pool, name=name)
    with _audit_volume(actor, "volume.download", host, pool, name):
        chunks = volume.download()
    return row.info, chunks


# ------------------------------------------------------------------------------------------------ uploads
UPLOAD = "storage.upload"  # the job type of an image upload; the job is the upload's record (web-driven)


@dataclass(frozen=True)
class UploadState:
    """Where an image upload stands: its job, the announced size, the bytes received so far (the next piece's
    offset), and the new volume once the last piece is in."""

    job: Job
    pool: str
    name: str
    size: int
    received: int
    info: hv.VolumeInfo | None = None

    @property
    def complete(self) -> bool:
        return self.info is not None


def _upload_target(pool: str, name: str) -> str:
    return f"{pool}/{name}"


def upload_job(host: Host, pool: str, name: str) -> Job | None:
    """The latest upload job of volume ``pool/name`` on ``host`` (finished or not)."""
    return (Job.objects.filter(kind=UPLOAD, host=host, target_type="volume", target=_upload_target(pool, name))
            .order_by("-pk").first())


def _unfinished_upload(host: Host, pool: str, name: str) -> Job | None:
    job = upload_job(host, pool, name)
    return job if job is not None and not job.finished_state else None


def _refuse_uploading(host: Host, pool: str, name: str) -> None:
    if _unfinished_upload(host, pool, name) is not None:
        raise ConflictError(f"{name} is still being uploaded: wait until its last piece is in.", code="uploading")


def _state(job: Job, info: hv.VolumeInfo | None = None) -> UploadState:
    return UploadState(job=job, pool=job.params["pool"], name=job.params["name"], size=int(job.params["size"]),
                       received=int(job.result.get("received", 0)), info=info)


def volume_upload_begin(*, actor: Actor, host: Host, pool: str, name: str, size: int) -> UploadState:
    """Start an image upload in pieces: a new raw volume of the announced ``size`` (the pool's room checked
    first), owned by ``actor``, and a web-driven job (``storage.upload``) that records it. If the pieces stop
    coming, cancelling the job or the sweep of quiet uploads deletes the unfinished volume."""
    handle = _user_pool(actor, host, pool)
    valid_volume_name(name)
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValidationError("Give the image's size in bytes (above zero).", fields={"size": ["above zero"]})
    with _audit_volume(actor, "volume.upload", host, pool, name) as notes, \
            quota_held(actor, disk_bytes=size, fields={"disk": "size"}):
        _refuse_taken(handle, name)
        check_space(handle, size, f"An upload of {human(size)}")
        volume = handle.create_volume(hv.VolumeSpec(name=name, capacity=size, format="raw"))
        try:
            with transaction.atomic():
                _record_owner(actor, host, pool, name)
                job = job_open(
                    actor=actor, kind=UPLOAD, title=f"Upload {name} to pool {pool} on {host}", target_type="volume",
                    target=_upload_target(pool, name), host=host,
                    params={"host_id": host.pk, "pool": pool, "name": name, "size": size},
                    cleanup=[undo_record("storage.delete_volume", f"deleted the unfinished upload {pool}/{name}",
                                         host_id=host.pk, pool=pool, name=name)],
                    result={"received": 0},  # the next piece's offset (pieces compare-and-set it)
                )
        except BaseException:
            volume.delete()
            raise
        notes.append(f"{human(size)} announced: job {job.pk}")
    return _state(job)


def _upload_of(actor: Actor, host: Host, pool: str, name: str) -> Job:
    """The unfinished upload of ``pool/name`` that ``actor`` (its starter, or staff) may continue."""
    job = upload_job(host, pool, name)
    if job is None or not job_may_view(actor, job):
        raise NotFoundError(f"No upload of {name} in pool {pool}: start one with POST {{\"size\": <bytes>}}.")
    if job.finished_state:
        raise ConflictError(f"The upload of {name} has {job.state}" + (f": {job.error}" if job.error else ".")
                            + " Start a new one.", code="upload_finished")
    return job


def volume_upload_state(*, actor: Actor, host: Host, pool: str, name: str) -> UploadState:
    """Where the unfinished upload of ``pool/name`` stands (to resume it at its offset)."""
    _user_pool(actor, host, pool)
    return _state(_upload_of(actor, host, pool, name))


def volume_upload_piece(*, actor: Actor, host: Host, pool: str, name: str, offset: int, length: int,
                        chunks: Iterable[bytes]) -> UploadState:
    """Write the next piece of an upload through libvirt (never whole in memory). Pieces come in order: ``offset``
    must be the bytes received so far. After the last piece the format (qcow2 or raw) is detected; an image that
    refers to a backing file is refused (it could make a VM read files outside the pool) and its volume deleted."""
    handle = _user_pool(actor, host, pool)
    job = _upload_of(actor, host, pool, name)
    state = _state(job)
    if offset != state.received:
        raise ConflictError(f"Expected the piece at offset {state.received}, got {offset}.", code="wrong_offset",
                            fields={"offset": [str(state.received)]})
    if length <= 0 or offset + length > state.size:
        raise ValidationError(
            f"A piece of {length} bytes at offset {offset} goes beyond the announced size ({state.size} bytes).",
            fields={"Content-Length": [f"at most {state.size - offset} bytes"]})
    try:
        volume = handle.volume(name)
    except hv.VolumeNotFound:
        job_fail(job_id=job.pk, error=f"The unfinished volume {pool}/{name} was deleted.")
        raise ConflictError(f"The unfinished volume {pool}/{name} was deleted: start a new upload.",
                            code="upload_finished") from None
    volume.upload(chunks, offset=offset, length=length)
    received = offset + length
    done = (Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, result__received=offset)
            .update(result={"received": received}))
    if not done:
        raise ConflictError(f"Another piece at offset {offset} of {name} arrived at the same time, or the upload "
                            "was stopped meanwhile.", code="wrong_offset")
    if received < state.size:
        job_progress(job_id=job.pk, percent=received * 100 // state.size)
        job.refresh_from_db()
        return _state(job)
    job.refresh_from_db()
    return _upload_finish(handle, job)


def _upload_finish(pool: hv.Pool, job: Job) -> UploadState:
    """The last piece is in: let libvirt detect the format, refuse an image with a backing file, close the job."""
    name = job.params["name"]
    try:
        pool.refresh()
        info = pool.volume(name).info(pool=pool.name)
        if info.backing_path:
            raise ValidationError(
                f"The image refers to a backing file ({info.backing_path}); upload a self-contained image.",
                fields={"file": ["has a backing file"]})
    except Exception as exc:
        run_cleanup(job.pk)  # every byte is in, so nobody can resend: the unfinished volume goes
        job_fail(job_id=job.pk, error=readable(exc))
        raise
    finished = job_succeed(job_id=job.pk, message=f"{name} is in pool {pool.name}: {info.format}, "
                                                  f"{human(info.capacity)}.",
                           result={"received": job.params["size"], "path": info.path, "format": info.format})
    return _state(finished or job, info)


def volume_upload_cancel(*, actor: Actor, host: Host, pool: str, name: str) -> Job:
    """Stop an unfinished upload: its job is cancelled and the unfinished volume deleted at once."""
    _user_pool(actor, host, pool)
    return job_cancel(actor=actor, job=_upload_of(actor, host, pool, name))


# ------------------------------------------------------------------------------------------------ a VM's disks
@dataclass(frozen=True)
class DiskResult:
    """A change to one of a VM's drives: its device name now, and what the person reads."""

    target: str
    message: str


def _disk(dom: hv.Domain, target: str) -> hv.DiskInfo:
    """The drive ``target`` as the VM has it now (the running guest's, else the definition's)."""
    disk = dom.document().disk(target)
    if disk is None:
        raise NotFoundError(f"This VM has no disk {target!r}.")
    return disk.info()


def _device(disk: hv.DiskInfo, *, source: str | None, shared_media: bool) -> hv.Disk:
    """A drive as attach/detach/update take it: ``disk``'s target, bus and kind, with ``source`` in it."""
    return hv.Disk.new(target=disk.target, device=disk.device, bus=disk.bus, source=source,
                       format=disk.format or "raw", readonly=disk.readonly, shared_media=shared_media)


def _check_bus(bus: str, *, cdrom: bool = False) -> str:
    allowed = hv.CDROM_BUSES if cdrom else tuple(hv.DISK_BUSES)
    if bus not in allowed:
        raise ValidationError(f"Unknown bus {bus!r}: use one of {', '.join(allowed)}.", fields={"bus": list(allowed)})
    return bus


def _taken_targets(dom: hv.Domain) -> list[str]:
    """Device names in use, in the definition and in the running guest."""
    return [d.target or "" for d in dom.document(inactive=True).disks + dom.document().disks]


def _attach(dom: hv.Domain, path: str, fmt: str, bus: str) -> str:
    target = hv.free_disk_target(bus, _taken_targets(dom))
    dom.attach(hv.Disk.new(target=target, bus=bus, source=path, format=fmt))
    return target


def disk_attach_new(*, actor: Actor, vm: VirtualMachine, pool: str, name: str, size: str, fmt: str = "qcow2",
                    bus: str = "virtio") -> DiskResult:
    """Create a volume and attach it as a new disk (hot-plugged when the VM runs)."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    _check_bus(bus)
    info = volume_create(actor=actor, host=vm.host, pool=pool, name=name, size=size, fmt=fmt)
    with vm_audited(actor, "vm.disk_attach", vm) as notes:
        try:
            target = _attach(dom, info.path, info.format, bus)
        except BaseException:
            volume_delete(actor=actor, host=vm.host, pool=pool, name=name)
            raise
        notes.append(f"{target} = new {pool}/{name}")
    return DiskResult(target, f"Attached as {target}.")


def disk_attach_existing(*, actor: Actor, vm: VirtualMachine, pool: str, name: str,
                         bus: str = "virtio") -> DiskResult:
    """Attach a volume ``actor`` may use and no VM uses (two writers corrupt a disk)."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    _check_bus(bus)
    row = volume_get(actor=actor, host=vm.host, pool=pool, name=name)
    if row.in_use:
        raise ConflictError(f"{name} is already a disk of {row.used_by_names}.", code="volume_in_use")
    _refuse_uploading(vm.host, pool, name)
    if row.is_iso:
        raise ValidationError(f"{name} is an ISO image: insert it into a CD-ROM drive instead.")
    with vm_audited(actor, "vm.disk_attach", vm) as notes:
        target = _attach(dom, row.info.path, row.info.format, bus)
        notes.append(f"{target} = {pool}/{name}")
    return DiskResult(target, f"Attached as {target}.")


def disk_detach(*, actor: Actor, vm: VirtualMachine, target: str) -> DiskResult:
    """Detach a disk; its volume stays (delete it separately). A running guest must agree to release it."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    disk = _disk(dom, target)
    with vm_audited(actor, "vm.disk_detach", vm) as notes:
        dom.detach(_device(disk, source=disk.source, shared_media=disk.shared_media))
        notes.append(f"{target} ({disk.source or 'empty'})")
    return DiskResult(target, f"{target} detached; its volume stays in its pool.")


def disk_set_bus(*, actor: Actor, vm: VirtualMachine, target: str, bus: str) -> DiskResult:
    """Move a disk to another bus (virtio, sata, scsi...) on a shut-off VM: its device name follows the bus."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    disk = _disk(dom, target)
    _check_bus(bus, cdrom=disk.is_cdrom)
    if dom.state().is_active:
        raise ConflictError("Shut the VM off first: a disk cannot change bus while the guest runs.",
                            code="vm_running")
    if disk.bus == bus:
        raise ValidationError(f"{target} is already on the {bus} bus.")
    with vm_audited(actor, "vm.disk_bus", vm) as notes:
        try:
            with dom.editing() as doc:
                new = doc.move_disk(target, bus)
        except hv.InvalidRequest as exc:
            raise ValidationError(exc.detail, fields={"bus": [exc.detail]}) from None
        notes.append(f"{target} → {new} ({bus})")
    return DiskResult(new, f"{target} is now {new} on the {bus} bus.")


def disk_resize(*, actor: Actor, vm: VirtualMachine, target: str, size: str) -> ResizeResult:
    """Grow one of the VM's disks (online when the VM runs): the disk's volume must be in a storage pool."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    disk = _disk(dom, target)
    if disk.device != "disk" or not disk.source:
        raise ValidationError(f"{target} is not a disk with an image: only disks can grow.")
    if disk.readonly or disk.shared_media:
        raise ValidationError(f"{target} is read-only or shared media; it cannot grow.")
    conn = host_connection(vm.host)
    volume = hv.volume_by_path(conn, disk.source)
    if volume is None:
        raise ValidationError(f"{disk.source} is not in a storage pool; the portal only resizes pool volumes.")
    pool = hv.pool_lookup(conn, volume.pool_name())
    info = volume.info(pool=pool.name)
    uses = tuple(hv.domain_disk_users(conn).get(info.path, ()))
    if any(u.domain_uuid != vm.uuid_str for u in uses):
        raise ConflictError("Another VM also uses this disk; it cannot be grown safely.", code="volume_in_use")
    return _resize(actor, vm.host, pool, volume, VolumeRow(info=info, users=uses), size)


def _medium(actor: Actor, vm: VirtualMachine, *, pool: str, name: str, iso_id: int | None) -> tuple[str, bool, str]:
    """The file of a CD-ROM medium, whether it is shared media (libvirt must not relabel it) and its label: an ISO
    of the ISO library (``iso_id``), or an ``*.iso`` volume of a pool open to ``actor``."""
    if iso_id is not None:
        iso = iso_get(actor=actor, pk=iso_id)
        if iso.host_id != vm.host_id or not iso.complete:
            raise NotFoundError("No such install medium on this VM's host.")
        return iso.path, True, iso.name
    if not name.lower().endswith(".iso"):
        raise ValidationError("Only ISO images (*.iso) go into a CD-ROM drive.", fields={"volume": ["not an ISO"]})
    handle = pool_handle(actor=actor, host=vm.host, name=pool)
    try:
        volume = handle.volume(name)
    except (hv.VolumeNotFound, hv.InvalidRequest):
        raise NotFoundError(f"No ISO {name!r} in pool {pool}.") from None
    # A pool's files are private to root (mode 0600): libvirt labels the ISO so QEMU can read it. It stays
    # read-only, so any number of VMs can share it.
    return volume.path, False, f"{pool}/{name}"


def _cdrom_drive(dom: hv.Domain, target: str) -> hv.DiskInfo:
    drive = _disk(dom, target)
    if not drive.is_cdrom:
        raise ValidationError(f"{target} is not a CD-ROM drive.")
    return drive


def cdrom_insert(*, actor: Actor, vm: VirtualMachine, target: str, pool: str = "", name: str = "",
                 iso_id: int | None = None) -> DiskResult:
    """Insert (or change) the medium in a CD-ROM drive, live when the VM runs: an ISO of the ISO library
    (``iso_id``), or an ``*.iso`` volume of a pool open to ``actor``. Media stay shared and read-only."""
    dom = vm_checked(actor, vm, VmAction.OPERATE)
    drive = _cdrom_drive(dom, target)
    source, shared, label = _medium(actor, vm, pool=pool, name=name, iso_id=iso_id)
    with vm_audited(actor, "vm.cdrom_insert", vm) as notes:
        dom.update(_device(drive, source=source, shared_media=shared))
        notes.append(f"{target}: {label}")
    return DiskResult(target, f"{name or label} is in {target}.")


def cdrom_eject(*, actor: Actor, vm: VirtualMachine, target: str) -> DiskResult:
    dom = vm_checked(actor, vm, VmAction.OPERATE)
    drive = _cdrom_drive(dom, target)
    if not drive.source:
        raise ConflictError(f"{target} is already empty.", code="empty")
    with vm_audited(actor, "vm.cdrom_eject", vm) as notes:
        dom.update(_device(drive, source=None, shared_media=False))
        notes.append(f"{target}: ejected {drive.source}")
    return DiskResult(target, f"{target} ejected.")


MAX_CDROM_DRIVES = 4  # per VM: enough for an installer, a driver disc and more; not a pile of empty drives


@dataclass(frozen=True)
class DriveChange:
    """A CD-ROM drive added to or removed from a VM's definition. ``pending``: the VM runs, so the change applies
    from its next boot (libvirt cannot hot-plug or hot-unplug a CD-ROM drive)."""

    target: str
    bus: str
    added: bool
    pending: bool

    @property
    def message(self) -> str:
        what = (f"CD-ROM drive {self.target} ({self.bus}) added" if self.added
                else f"CD-ROM drive {self.target} removed")
        if self.pending:
            return f"{what}; it takes effect at the next boot (a CD-ROM drive cannot be hot-plugged)."
        return f"{what}."


def cdrom_add(*, actor: Actor, vm: VirtualMachine, bus: str = "", pool: str = "", name: str = "",
              iso_id: int | None = None) -> DriveChange:
    """Add a CD-ROM drive (``virt-xml --add-device --disk device=cdrom``), empty or with a medium (as
    :func:`cdrom_insert` takes it), to the VM's persistent definition. The bus defaults to the machine's (SATA on
    q35, IDE on i440fx); the drive gets the first free device name of that bus. A running VM gets it at its next
    boot."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    config = dom.document(inactive=True)
    bus = _check_bus(bus or config.default_cdrom_bus, cdrom=True)
    if bus == "ide" and config.lacks_ide:
        raise ValidationError(f"A q35 machine ({config.machine}) has no IDE controller: use sata.",
                              fields={"bus": ["no IDE on q35"]})
    medium = _medium(actor, vm, pool=pool, name=name, iso_id=iso_id) if name or iso_id is not None else None
    running = dom.state().is_active
    if sum(d.is_cdrom for d in config.disks) >= MAX_CDROM_DRIVES:
        raise ConflictError(f"{vm.name} already has {MAX_CDROM_DRIVES} CD-ROM drives, the most a VM may have: "
                            "change the medium in one of them instead.", code="too_many_drives")
    target = hv.free_disk_target(bus, _taken_targets(dom) if running else [d.target or "" for d in config.disks])
    if bus == "ide" and target not in hv.IDE_TARGETS:
        raise ConflictError(f"All {len(hv.IDE_TARGETS)} IDE slots (hda–hdd) of {vm.name} are taken: "
                            "use sata, or remove a drive first.", code="no_free_slot")
    source, shared, label = medium or (None, False, "empty")
    with vm_audited(actor, "vm.cdrom_add", vm) as notes:
        with dom.editing() as doc:
            if doc.disk(target) is not None:
                raise ConflictError(f"This VM already has a disk {target}.", code="name_taken")
            doc.add_device(hv.Disk.new(target=target, device="cdrom", bus=bus, source=source, format="raw",
                                       shared_media=shared))
        notes.append(f"{target} ({bus}): {label}" + (", from the next boot" if running else ""))
    return DriveChange(target=target, bus=bus, added=True, pending=running)


def cdrom_remove(*, actor: Actor, vm: VirtualMachine, target: str) -> DriveChange:
    """Remove a CD-ROM drive (empty or loaded; the medium's file stays) from the VM's persistent definition. A
    running VM keeps the drive until it stops."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    running = dom.state().is_active
    drive = dom.document(inactive=True).disk(target)  # refusals are checked before the audited change
    if drive is None:
        if running and dom.document().disk(target) is not None:
            raise ConflictError(f"{target} is already removed from the definition; it goes when the VM "
                                "next stops.", code="pending")
        raise NotFoundError(f"This VM has no drive {target!r}.")
    if not drive.is_cdrom:
        raise ValidationError(f"{target} is a disk, not a CD-ROM drive: detach it instead (its volume "
                              "stays).", fields={"target": ["not a CD-ROM drive"]})
    source, bus = drive.source, drive.bus or ""
    with vm_audited(actor, "vm.cdrom_remove", vm) as notes:
        with dom.editing() as doc:
            current = doc.disk(target)
            if current is None or not current.is_cdrom:  # changed since the check above
                raise ConflictError(f"The drive {target} changed meanwhile: reload and try again.", code="changed")
            doc.remove_device(current)
        notes.append(f"{target} ({source or 'empty'})" + (", from the next boot" if running else ""))
    return DriveChange(target=target, bus=bus, added=False, pending=running)


@dataclass(frozen=True)
class BootOrderResult:
    order: list[str]

    @property
    def message(self) -> str:
        return "Boot order: " + ", ".join(self.order) + " (from the next boot)."


def boot_order_set(*, actor: Actor, vm: VirtualMachine, order: list[str]) -> BootOrderResult:
    """Set the boot order (cdrom, hd, network); takes effect at the next boot."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    with vm_audited(actor, "vm.boot_order", vm) as notes:
        try:
            with dom.editing() as doc:
                doc.set_boot_order(order)
        except hv.InvalidRequest as exc:
            raise ValidationError(exc.detail, fields={"order": [exc.detail]}) from None
        notes.append(" ".join(order))
    return BootOrderResult(order=list(order))


# ------------------------------------------------------------------------------------------------ undo steps
BUSY_WAIT = 900  # seconds an undo waits for libvirt to finish writing a volume before deleting it
POLL = 0.5


@undo_step("storage.delete_volume")
def _undo_volume(params: dict[str, Any]) -> str | None:
    """Delete a volume a job made (a clone's copy, a new VM's disk, an unfinished upload) and forget its owner. A
    copy still running inside libvirtd (the worker died mid-copy) cannot be deleted until it ends: wait for it."""
    conn = host_connection(Host.objects.get(pk=params["host_id"]))
    try:
        pool = hv.pool_lookup(conn, params["pool"])
        try:
            pool.refresh()
        except hv.OperationFailed:
            pass  # libvirt refuses to refresh a pool while it copies into it: its list of volumes is current then
        volume = pool.volume(params["name"])
    except hv.NotFound:
        return "already gone"
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            volume.delete()
            break
        except hv.OperationInvalid:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL)  # "volume is still being allocated": libvirtd is still copying into it
    VolumeOwner.objects.filter(host_id=params["host_id"], pool=params["pool"], name=params["name"]).delete()
    return None
