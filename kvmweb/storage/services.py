"""Every change to storage: pools (staff), volumes, a VM's disks and CD-ROM media, boot order.

Each service: permission check → validation (names, sizes, free space) → libvirt call → audit row. Nothing a user
typed reaches libvirt unchecked, and no name can point outside its pool.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from kvmweb import hypervisor as hv
from kvmweb.accounts.services import check_quota
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import readable, run_cleanup, undo_record
from kvmweb.jobs.services import job_cancel, job_cancelled, job_create, job_fail, job_open, job_progress, job_succeed
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import can_see, is_staff, vm_domain
from kvmweb.media.selectors import iso_get

from .models import PoolAccess, VolumeOwner
from .selectors import VolumeRow, pool_get, volume_get
from .sizes import SizeRequest, human, parse_size
from .tasks import clone_vm

Actor = AbstractBaseUser | AnonymousUser


def valid_volume_name(name: str, *, field_name: str = "name") -> str:
    try:
        return hv.validate_volume_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={field_name: [exc.detail]}) from None


def staff_only(actor: Actor) -> None:
    """Pool management is for staff: 403 for anyone else (before any input is looked at)."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDeniedError("Log in first.")
    if not is_staff(actor):
        raise PermissionDeniedError("Only staff manage storage pools.")


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
        if any(p.name == spec.name for p in hv.list_pools(conn)):
            raise ConflictError(f"A storage pool named {spec.name} already exists on {host}.", code="name_taken")
        pool = hv.pool_define(conn, spec)
        if autostart:
            pool.set_autostart(True)
        notes.append(spec.target_path)
        return pool.info()


def _pool_action(actor: Actor, host: Host, name: str) -> hv.Pool:
    staff_only(actor)
    return pool_get(actor=actor, host=host, name=name)


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
        users = hv.disk_users(host_connection(host))
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
    pool_get(actor=actor, host=host, name=name)
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


# ------------------------------------------------------------------------------------------------ volumes
def _check_space(pool: hv.Pool, needed: int, what: str) -> None:
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
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDeniedError("Log in first.")
    pool = pool_get(actor=actor, host=host, name=name)
    if not pool.is_active():
        raise ConflictError(f"Pool {name} is not running.", code="not_running")
    return pool


def _record_owner(actor: Actor, host: Host, pool: str, name: str) -> None:
    VolumeOwner.objects.update_or_create(host=host, pool=pool, name=name, defaults={"owner": actor})


def volume_create(*, actor: Actor, host: Host, pool: str, name: str, size: str, fmt: str = "qcow2") -> hv.VolumeInfo:
    """``qemu-img create -f FMT NAME SIZE`` in a pool open to ``actor``; the volume becomes theirs."""
    handle = _user_pool(actor, host, pool)
    valid_volume_name(name)
    if fmt not in hv.storage.VOLUME_FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}: use qcow2 or raw.", fields={"format": ["qcow2 or raw"]})
    capacity = parse_size(size).amount
    check_quota(actor, disk_bytes=capacity, fields={"disk": "size"})
    with _audit_volume(actor, "volume.create", host, pool, name) as notes:
        _refuse_taken(handle, name)
        _check_space(handle, capacity, f"A {human(capacity)} volume")
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
    request: SizeRequest = parse_size(size, allow_relative=True)
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
    check_quota(actor, disk_bytes=new - old, fields={"disk": "size"})
    _check_space(pool, new - old, f"Growing by {human(new - old)}")
    running: list[tuple[hv.Domain, str]] = []
    conn = host_connection(host)
    for use in row.users:
        try:
            dom = hv.lookup(conn, use.domain_uuid)
        except hv.DomainNotFound:
            continue
        if dom.state().is_active:
            running.append((dom, use.target))
    if len(running) > 1:
        raise ConflictError("More than one running VM uses this volume; it cannot be grown safely.",
                            code="volume_in_use")
    with _audit_volume(actor, "volume.resize", host, pool.name, row.name) as notes:
        if running:
            dom, target = running[0]
            hv.block_resize(dom, target, new)
            bus = next((d.bus for d in dom.spec().disks if d.target == target), "")
            notes.append(f"online via {dom.name}/{target}")
        else:
            volume.resize(new)
            bus = ""
        notes.append(f"{old} -> {new} bytes")
    return ResizeResult(volume=row.name, old_capacity=old, new_capacity=new, online=bool(running),
                        guest_note=_guest_note(bus, bool(running)))


def volume_resize(*, actor: Actor, host: Host, pool: str, name: str, size: str) -> ResizeResult:
    """``qemu-img resize NAME +10G`` (or an absolute size); grow only. A disk of a running VM grows online."""
    handle, volume, row = volume_get(actor=actor, host=host, pool=pool, name=name)
    _refuse_uploading(host, pool, name)
    return _resize(actor, host, handle, volume, row, size)


def volume_delete(*, actor: Actor, host: Host, pool: str, name: str) -> None:
    """Delete a volume no VM uses (refused naming the VMs that do) and no linked clone reads from."""
    handle, volume, row = volume_get(actor=actor, host=host, pool=pool, name=name)
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
    _handle, volume, row = volume_get(actor=actor, host=host, pool=pool, name=name)
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
    check_quota(actor, disk_bytes=size, fields={"disk": "size"})
    with _audit_volume(actor, "volume.upload", host, pool, name) as notes:
        _refuse_taken(handle, name)
        _check_space(handle, size, f"An upload of {human(size)}")
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
    if job is None or not (is_staff(actor) or job.actor_id == getattr(actor, "pk", None)):
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
def _vm_check(actor: Actor, vm: VirtualMachine) -> hv.Domain:
    if not getattr(actor, "is_authenticated", False) or not can_see(actor, vm):
        raise NotFoundError("No such virtual machine.")
    return vm_domain(vm)


def _audit_vm(actor: Actor, action: str, vm: VirtualMachine):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="vm", target=f"{vm.name} {vm.uuid}", host=vm.host.uri)


def _disk(dom: hv.Domain, target: str) -> hv.DiskSpec:
    for disk in dom.spec().disks:
        if disk.target == target:
            return disk
    raise NotFoundError(f"This VM has no disk {target!r}.")


def _check_bus(bus: str, *, cdrom: bool = False) -> str:
    allowed = hv.storage.CDROM_BUSES if cdrom else tuple(hv.storage.DISK_BUSES)
    if bus not in allowed:
        raise ValidationError(f"Unknown bus {bus!r}: use one of {', '.join(allowed)}.", fields={"bus": list(allowed)})
    return bus


def _attach(dom: hv.Domain, path: str, fmt: str, bus: str) -> str:
    target = hv.storage.free_target(bus, [d.target for d in dom.spec(inactive=True).disks] +
                                    [d.target for d in dom.spec().disks])
    dom.attach_device(hv.disk_xml(hv.DiskSpec(target=target, bus=bus, source=path, format=fmt)))
    return target


def disk_attach_new(*, actor: Actor, vm: VirtualMachine, pool: str, name: str, size: str, fmt: str = "qcow2",
                    bus: str = "virtio") -> str:
    """Create a volume and attach it as a new disk (hot-plugged when the VM runs). Returns the device name."""
    dom = _vm_check(actor, vm)
    _check_bus(bus)
    info = volume_create(actor=actor, host=vm.host, pool=pool, name=name, size=size, fmt=fmt)
    with _audit_vm(actor, "vm.disk_attach", vm) as notes:
        try:
            target = _attach(dom, info.path, info.format, bus)
        except BaseException:
            volume_delete(actor=actor, host=vm.host, pool=pool, name=name)
            raise
        notes.append(f"{target} = new {pool}/{name}")
    return target


def disk_attach_existing(*, actor: Actor, vm: VirtualMachine, pool: str, name: str, bus: str = "virtio") -> str:
    """Attach a volume ``actor`` may use and no VM uses (two writers corrupt a disk)."""
    dom = _vm_check(actor, vm)
    _check_bus(bus)
    _handle, _volume, row = volume_get(actor=actor, host=vm.host, pool=pool, name=name)
    if row.in_use:
        raise ConflictError(f"{name} is already a disk of {row.used_by_names}.", code="volume_in_use")
    _refuse_uploading(vm.host, pool, name)
    if row.is_iso:
        raise ValidationError(f"{name} is an ISO image: insert it into a CD-ROM drive instead.")
    with _audit_vm(actor, "vm.disk_attach", vm) as notes:
        target = _attach(dom, row.info.path, row.info.format, bus)
        notes.append(f"{target} = {pool}/{name}")
    return target


def disk_detach(*, actor: Actor, vm: VirtualMachine, target: str) -> None:
    """Detach a disk; its volume stays (delete it separately). A running guest must agree to release it."""
    dom = _vm_check(actor, vm)
    disk = _disk(dom, target)
    with _audit_vm(actor, "vm.disk_detach", vm) as notes:
        dom.detach_device(hv.disk_xml(disk))
        notes.append(f"{target} ({disk.source or 'empty'})")


def disk_set_bus(*, actor: Actor, vm: VirtualMachine, target: str, bus: str) -> str:
    """Move a disk to another bus (virtio, sata, scsi...) on a shut-off VM. Returns its new device name."""
    dom = _vm_check(actor, vm)
    disk = _disk(dom, target)
    _check_bus(bus, cdrom=disk.device == "cdrom")
    if dom.state().is_active:
        raise ConflictError("Shut the VM off first: a disk cannot change bus while the guest runs.",
                            code="vm_running")
    if disk.bus == bus:
        raise ValidationError(f"{target} is already on the {bus} bus.")
    with _audit_vm(actor, "vm.disk_bus", vm) as notes:
        new = hv.storage.set_disk_bus(dom, target, bus)
        notes.append(f"{target} → {new} ({bus})")
    return new


def disk_resize(*, actor: Actor, vm: VirtualMachine, target: str, size: str) -> ResizeResult:
    """Grow one of the VM's disks (online when the VM runs): the disk's volume must be in a storage pool."""
    dom = _vm_check(actor, vm)
    disk = _disk(dom, target)
    if disk.device != "disk" or not disk.source:
        raise ValidationError(f"{target} is not a disk with an image: only disks can grow.")
    if disk.readonly or disk.shared_media:
        raise ValidationError(f"{target} is read-only or shared media; it cannot grow.")
    conn = host_connection(vm.host)
    volume = hv.volume_for_path(conn, disk.source)
    if volume is None:
        raise ValidationError(f"{disk.source} is not in a storage pool; the portal only resizes pool volumes.")
    pool = hv.pool_lookup(conn, volume.pool_name())
    info = volume.info(pool=pool.name)
    uses = tuple(hv.disk_users(conn).get(info.path, ()))
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
    handle = pool_get(actor=actor, host=vm.host, name=pool)
    try:
        volume = handle.volume(name)
    except (hv.VolumeNotFound, hv.InvalidRequest):
        raise NotFoundError(f"No ISO {name!r} in pool {pool}.") from None
    # A pool's files are private to root (mode 0600): libvirt labels the ISO so QEMU can read it. It stays
    # read-only, so any number of VMs can share it.
    return volume.path, False, f"{pool}/{name}"


def cdrom_insert(*, actor: Actor, vm: VirtualMachine, target: str, pool: str = "", name: str = "",
                 iso_id: int | None = None) -> None:
    """Insert (or change) the medium in a CD-ROM drive, live when the VM runs: an ISO of the ISO library
    (``iso_id``), or an ``*.iso`` volume of a pool open to ``actor``. Media stay shared and read-only."""
    dom = _vm_check(actor, vm)
    drive = _disk(dom, target)
    if drive.device != "cdrom":
        raise ValidationError(f"{target} is not a CD-ROM drive.")
    source, shared, label = _medium(actor, vm, pool=pool, name=name, iso_id=iso_id)
    with _audit_vm(actor, "vm.cdrom_insert", vm) as notes:
        dom.update_device(hv.disk_xml(hv.DiskSpec(
            target=target, device="cdrom", bus=drive.bus, source=source, format="raw", shared_media=shared,
        )))
        notes.append(f"{target}: {label}")


def cdrom_eject(*, actor: Actor, vm: VirtualMachine, target: str) -> None:
    dom = _vm_check(actor, vm)
    drive = _disk(dom, target)
    if drive.device != "cdrom":
        raise ValidationError(f"{target} is not a CD-ROM drive.")
    if not drive.source:
        raise ConflictError(f"{target} is already empty.", code="empty")
    with _audit_vm(actor, "vm.cdrom_eject", vm) as notes:
        dom.update_device(hv.disk_xml(hv.DiskSpec(target=target, device="cdrom", bus=drive.bus, source=None,
                                                  format="raw")))
        notes.append(f"{target}: ejected {drive.source}")


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
    dom = _vm_check(actor, vm)
    config = dom.spec(inactive=True)
    bus = _check_bus(bus or hv.storage.default_cdrom_bus(config.machine, config.arch), cdrom=True)
    if bus == "ide" and hv.storage.machine_lacks_ide(config.machine):
        raise ValidationError(f"A q35 machine ({config.machine}) has no IDE controller: use sata.",
                              fields={"bus": ["no IDE on q35"]})
    medium = _medium(actor, vm, pool=pool, name=name, iso_id=iso_id) if name or iso_id is not None else None
    running = dom.state().is_active
    disks = list(config.disks) + (list(dom.spec().disks) if running else [])
    if sum(d.device == "cdrom" for d in config.disks) >= MAX_CDROM_DRIVES:
        raise ConflictError(f"{vm.name} already has {MAX_CDROM_DRIVES} CD-ROM drives, the most a VM may have: "
                            "change the medium in one of them instead.", code="too_many_drives")
    target = hv.storage.free_target(bus, [d.target for d in disks])
    if bus == "ide" and target not in hv.storage.IDE_TARGETS:
        raise ConflictError(f"All {len(hv.storage.IDE_TARGETS)} IDE slots (hda–hdd) of {vm.name} are taken: "
                            "use sata, or remove a drive first.", code="no_free_slot")
    source, shared, label = medium or (None, False, "empty")
    with _audit_vm(actor, "vm.cdrom_add", vm) as notes:
        hv.storage.add_disk_config(dom, hv.DiskSpec(target=target, device="cdrom", bus=bus, source=source,
                                                    format="raw", shared_media=shared))
        notes.append(f"{target} ({bus}): {label}" + (", from the next boot" if running else ""))
    return DriveChange(target=target, bus=bus, added=True, pending=running)


def cdrom_remove(*, actor: Actor, vm: VirtualMachine, target: str) -> DriveChange:
    """Remove a CD-ROM drive (empty or loaded; the medium's file stays) from the VM's persistent definition. A
    running VM keeps the drive until it stops."""
    dom = _vm_check(actor, vm)
    drive = next((d for d in dom.spec(inactive=True).disks if d.target == target), None)
    running = dom.state().is_active
    if drive is None:
        if running and any(d.target == target for d in dom.spec().disks):
            raise ConflictError(f"{target} is already removed from the definition; it goes when the VM next stops.",
                                code="pending")
        raise NotFoundError(f"This VM has no drive {target!r}.")
    if drive.device != "cdrom":
        raise ValidationError(f"{target} is a disk, not a CD-ROM drive: detach it instead (its volume stays).",
                              fields={"target": ["not a CD-ROM drive"]})
    with _audit_vm(actor, "vm.cdrom_remove", vm) as notes:
        hv.storage.remove_disk_config(dom, target)
        notes.append(f"{target} ({drive.source or 'empty'})" + (", from the next boot" if running else ""))
    return DriveChange(target=target, bus=drive.bus, added=False, pending=running)


def boot_order_set(*, actor: Actor, vm: VirtualMachine, order: list[str]) -> None:
    """Set the boot order (cdrom, hd, network); takes effect at the next boot."""
    dom = _vm_check(actor, vm)
    with _audit_vm(actor, "vm.boot_order", vm) as notes:
        try:
            hv.set_boot_order(dom, order)
        except hv.InvalidRequest as exc:
            raise ValidationError(exc.detail, fields={"order": [exc.detail]}) from None
        notes.append(" ".join(order))


# ------------------------------------------------------------------------------------------------ clone a VM
CLONE_MODES = ("full", "linked")


@dataclass(frozen=True)
class CloneDisk:
    target: str
    pool: str
    source: str  # volume name
    source_path: str
    new_name: str
    format: str  # of the new volume
    allocation: int  # bytes the source holds (what a full copy writes)
    capacity: int = 0  # the new volume's virtual size (a linked clone's overlay has its backing file's)

    def as_params(self) -> dict[str, object]:
        return dict(vars(self))


def clone_suggest_name(host: Host, source: str) -> str:
    """``<source>-clone``, or ``<source>-clone-2``... whichever no domain on the host has (virt-clone's way)."""
    taken = {d.name for d in hv.list_domains(host_connection(host))}
    stem = source[:58]
    candidate, n = f"{stem}-clone", 2
    while candidate in taken:
        candidate, n = f"{stem}-clone-{n}", n + 1
    return candidate


def clone_plan(*, host: Host, dom: hv.Domain, name: str, mode: str) -> list[CloneDisk]:
    """Which disks get copied and under which names: every writable disk, in its own pool, named like virt-clone
    names them (``new.qcow2``, ``new-1.qcow2``...). Read-only and shared media (ISOs) stay shared."""
    conn = host_connection(host)
    plan: list[CloneDisk] = []
    taken: dict[str, set[str]] = {}
    for disk in dom.spec(inactive=True).disks:
        if disk.device != "disk" or not disk.source or disk.readonly or disk.shared_media:
            continue
        volume = hv.volume_for_path(conn, disk.source)
        if volume is None:
            raise ValidationError(f"Disk {disk.target} ({disk.source}) is not in a storage pool; the portal can "
                                  "only clone disks that live in pools.")
        pool = hv.pool_lookup(conn, volume.pool_name())
        info = volume.info(pool=pool.name)
        if pool.name not in taken:
            taken[pool.name] = {v.name for v in pool.volumes()}
        fmt = "qcow2" if mode == "linked" else info.format
        _stem, ext = hv.storage.split_ext(info.name)
        new_name = hv.storage.file_name_for(name, ext if mode == "full" and ext else "qcow2", taken[pool.name])
        taken[pool.name].add(new_name)
        plan.append(CloneDisk(target=disk.target, pool=pool.name, source=info.name, source_path=info.path,
                              new_name=new_name, format=fmt, allocation=info.allocation,
                              capacity=info.capacity))
    return plan


def vm_clone(*, actor: Actor, vm: VirtualMachine, name: str = "", mode: str = "full",
             pause_source: bool = False) -> Job:
    """Queue a clone of ``vm`` (``virt-clone --original SRC --name NEW --auto-clone``) as a Job; returns the Job.

    Full mode copies every writable disk; linked mode makes qcow2 overlays on the source's disks (the source must
    then stay, and stay shut off). The source must be shut off, or the user agrees to pause it during the copy.
    The clone belongs to ``actor``."""

    dom = _vm_check(actor, vm)
    if mode not in CLONE_MODES:
        raise ValidationError(f"Unknown clone mode {mode!r}: use full or linked.", fields={"mode": list(CLONE_MODES)})
    name = (name or "").strip() or clone_suggest_name(vm.host, vm.name)
    try:
        hv.validate_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"name": [exc.detail]}) from None
    if any(d.name == name for d in hv.list_domains(host_connection(vm.host))):
        raise ConflictError(f"A virtual machine named {name} already exists on {vm.host}.", code="name_taken")
    state = dom.state()
    if state.is_active:
        if mode == "linked":
            raise ConflictError(f"{vm.name} is {state.label}: shut it off for a linked clone (it must not write "
                                "to the disks the clone reads from).", code="vm_running")
        if not pause_source:
            raise ConflictError(f"{vm.name} is {state.label}: shut it off first, or confirm pausing it during the "
                                "copy.", code="vm_running")
    plan = clone_plan(host=vm.host, dom=dom, name=name, mode=mode)
    source = dom.info()  # the clone counts in the quota like the source: its vCPUs, memory and disks' virtual size
    check_quota(actor, vms=1, vcpus=source.vcpus, memory_mib=source.max_memory_kib // 1024,
                disk_bytes=sum(d.capacity for d in plan))
    if mode == "full":
        conn = host_connection(vm.host)
        for pool_name in {d.pool for d in plan}:
            need = sum(d.allocation for d in plan if d.pool == pool_name)
            _check_space(hv.pool_lookup(conn, pool_name), need, f"Copying the disks ({human(need)})")
    with _audit_vm(actor, f"vm.clone_{mode}", vm) as notes, transaction.atomic():
        job = job_create(
            actor=actor, kind="storage.clone", title=f"Clone {vm.name} → {name} ({mode})", task=clone_vm,
            target_type="vm", target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "source_uuid": str(vm.uuid), "name": name, "mode": mode,
                    "pause": bool(pause_source and state.is_active), "owner_id": getattr(actor, "pk", None),
                    "disks": [d.as_params() for d in plan]},
        )
        notes.append(f"{name}: job {job.pk}")
    return job
