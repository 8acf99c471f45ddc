"""Every change to the ISO library: permission check → validation → libvirt → audit row.

Uploads go into a directory pool the portal owns on each host (``KVMWEB_ISO_POOL`` in ``KVMWEB_ISO_DIR``), created
on demand, through libvirt's volume upload stream — so remote hosts work too — in pieces the browser sends one
after another (``iso_upload_piece``); no piece is ever held whole in memory either.

Staff add a file already on a host with ``iso_import`` (a Celery job, ``iso.import``): ``register`` keeps the file
where it is, ``copy`` gives the library its own copy in the ISO pool, streamed through libvirt in pieces (progress,
cancel between pieces). Either way the job first checks the file is an ISO 9660 image.
"""
from __future__ import annotations

import os
import posixpath
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from kvmweb import hypervisor as hv
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobContext, undo_record
from kvmweb.jobs.services import job_cancel, job_cancelled, job_create, job_open, job_progress, job_succeed
from kvmweb.access.permissions import Actor, actor_id, is_authenticated, is_staff

from .models import IsoImage
from .selectors import iso_users

human = hv.human
MAX_ISO_BYTES = 64 * 1024**4  # 64 TiB: anything above is a typo
UPLOAD, IMPORT = "iso.upload", "iso.import"  # the library's job types
IMPORT_MODES = ("register", "copy")
LOCAL_URIS = ("qemu:///", "test:///")  # hosts whose files this machine can read directly
CANCEL_CHECK = 0.1  # seconds between cancel checks while copying


def _audit(actor: Actor, action: str, host: Host, target: str):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="iso", target=target, host=host.uri)


def can_upload(actor: Actor) -> bool:
    return is_staff(actor) or (is_authenticated(actor) and settings.KVMWEB_ISO_UPLOAD_BY_USERS)


def can_change(actor: Actor, iso: IsoImage) -> bool:
    return is_staff(actor) or (is_authenticated(actor) and iso.added_by_id == actor_id(actor))


def _may_change(actor: Actor, iso: IsoImage) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotFoundError("No such install medium.")
    if not can_change(actor, iso):
        raise PermissionDeniedError("Only staff or the person who added a medium may change it.")


def iso_pool(host: Host) -> hv.Pool:
    """The portal's ISO pool on ``host``, created (folder, pool, autostart) the first time it is needed."""
    return hv.pool_ensure(host_connection(host), settings.KVMWEB_ISO_POOL, settings.KVMWEB_ISO_DIR)


def image_pool(host: Host) -> hv.Pool:
    """The portal's image pool on ``host`` (disk images of the image library), created the first time it is
    needed."""
    return hv.pool_ensure(host_connection(host), settings.KVMWEB_IMAGE_POOL, settings.KVMWEB_IMAGE_DIR)


def upload_file_name(name: str) -> str:
    """A browser's file name as a volume name: characters a file name in the pool may not hold become '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename((name or "").strip()))
    return cleaned.lstrip("._-")[-64:]


def validate_iso_name(name: str) -> str:
    name = upload_file_name(name)
    try:
        hv.validate_volume_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"name": [exc.detail]}) from None
    if not name.lower().endswith(".iso"):
        raise ValidationError(f"{name!r}: an install medium's name ends with .iso.", fields={"name": ["must end with .iso"]})
    return name


def iso_upload_begin(*, actor: Actor, host: Host, name: str, size: int) -> IsoImage:
    """Make room for an upload: an empty volume of ``size`` bytes in the host's ISO pool, and its row."""
    if not can_upload(actor):
        raise PermissionDeniedError("Only staff can add install media.")
    name = validate_iso_name(name)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_ISO_BYTES:
        raise ValidationError("The file size must be above zero (and below 64 TiB).", fields={"size": ["invalid size"]})
    if IsoImage.objects.filter(host=host, name=name).exists():
        raise ConflictError(f"The ISO library of {host} already has {name}.", code="name_taken")
    with _audit(actor, "iso.upload", host, name):
        pool = iso_pool(host)
        check_room(host, pool, name, size, field="size")
        volume = pool.create_media_volume(name, size)
        try:
            with transaction.atomic():
                iso = IsoImage.objects.create(host=host, name=name, path=volume.path, pool=pool.name, size=size,
                                              added_by=actor if actor.is_authenticated else None)
                job_open(
                    actor=actor, kind=UPLOAD, title=f"Upload {name} to {host}", target_type="iso",
                    target=str(iso.pk), host=host, params={"iso_id": iso.pk, "size": size},
                    cleanup=[undo_record("media.delete_upload", f"removed the unfinished upload {name}",
                                         iso_id=iso.pk, uri=host.uri)],
                )
                return iso
        except IntegrityError:
            volume.delete()
            raise ConflictError(f"The ISO library of {host} already has {name}.", code="name_taken") from None


def check_room(host: Host, pool: hv.Pool, name: str, size: int, *, field: str) -> None:
    """Refuse a medium of ``size`` bytes that the ISO pool has no room for."""
    pool.refresh()
    info = pool.info()
    if size > info.available:
        raise ValidationError(
            f"The ISO pool on {host} has {human(info.available)} free; {name} needs {human(size)}.",
            fields={field: ["not enough room in the ISO pool"]})


def iso_job(iso: IsoImage) -> Job | None:
    """The job that brings this medium in: its upload, or its import."""
    return (Job.objects.filter(kind__in=(UPLOAD, IMPORT), target_type="iso", target=str(iso.pk))
            .order_by("-pk").first())


def iso_upload_piece(*, actor: Actor, iso: IsoImage, offset: int, length: int, chunks: Iterable[bytes]) -> IsoImage:
    """Write the next piece of an upload; pieces come in order (``offset`` must be what was received so far)."""
    _may_change(actor, iso)
    if iso.complete:
        raise ConflictError(f"{iso.name} is already complete.", code="complete")
    job = iso_job(iso)
    if job is not None and job.kind != UPLOAD:
        raise ConflictError(f"{iso.name} is being imported, not uploaded.", code="not_an_upload")
    if job is not None and job.finished_state:
        raise ConflictError(f"The upload of {iso.name} has {job.state}.", code="upload_finished")
    if offset != iso.uploaded:
        raise ConflictError(f"Expected the piece at offset {iso.uploaded}, got {offset}.", code="wrong_offset")
    if length <= 0 or offset + length > iso.size:
        raise ValidationError(f"A piece of {length} bytes at {offset} does not fit a file of {iso.size} bytes.")
    conn = host_connection(iso.host)
    volume = hv.pool_lookup(conn, iso.pool).volume(iso.name)
    volume.upload(chunks, offset=offset, length=length)
    with transaction.atomic():
        IsoImage.objects.filter(pk=iso.pk, uploaded=offset).update(uploaded=F("uploaded") + length)
        iso.refresh_from_db()
        if iso.uploaded == iso.size and not iso.complete:
            iso.complete = True
            iso.save(update_fields=["complete"])
    if job is not None:
        if iso.complete:
            job_succeed(job_id=job.pk, message=f"{iso.name} is in the ISO library ({iso.size} bytes).",
                        result={"path": iso.path})
        else:
            job_progress(job_id=job.pk, percent=iso.uploaded * 100 // iso.size)
    return iso


@dataclass(frozen=True)
class HostFile:
    """A file already on a host: a volume of one of its pools (read through libvirt, so remote hosts work), or a
    local file outside any pool (local hosts only)."""

    path: str
    size: int
    pool: str  # "" for a file outside every pool
    volume: hv.Volume | None

    def chunks(self) -> Iterator[bytes]:
        """Its bytes, streamed in pieces (closing the iterator early stops the stream)."""
        return self.volume.download() if self.volume is not None else _file_chunks(self.path)

    def check_iso9660(self) -> None:
        try:
            head = hv.read_head(self.chunks())
        except OSError as exc:
            raise ValidationError(f"Cannot read {self.path}: {exc.strerror or exc}.",
                                  fields={"path": ["unreadable"]}) from None
        if not hv.looks_like_iso9660(head):
            raise ValidationError(f"{self.path} is not an ISO 9660 image (no CD001 signature).",
                                  fields={"path": ["not an ISO 9660 image"]})


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as src:
        while data := src.read(hv.STREAM_CHUNK):
            yield data


def clean_host_path(path: str) -> str:
    path = (path or "").strip()
    if not path.startswith("/") or posixpath.normpath(path) != path or any(c in path for c in "\0\n\r"):
        raise ValidationError(f"{path!r} is not a clean absolute path.", fields={"path": ["an absolute path"]})
    return path


def host_file(host: Host, path: str) -> HostFile:
    """The file ``path`` on ``host`` (a clear 400 when there is none)."""
    volume = hv.volume_by_path(host_connection(host), path)
    if volume is not None:
        spec = volume.spec()
        return HostFile(path=path, size=spec.physical or spec.capacity, pool=volume.pool_name(), volume=volume)
    if host.uri.startswith(LOCAL_URIS) and os.path.isfile(path):
        return HostFile(path=path, size=os.path.getsize(path), pool="", volume=None)
    raise ValidationError(f"No file {path} on {host} (it must be a file in one of the host's storage pools, "
                          "or a local file).", fields={"path": ["no such file"]})


@dataclass(frozen=True)
class ImportPlan:
    """A checked request to add a host's file to the library: the row to make and where its bytes come from."""

    host: Host
    source: HostFile
    mode: str
    name: str
    path: str  # the medium's path: the source itself (register) or its copy in the ISO pool
    pool: str

    def row(self, actor: Actor, *, complete: bool) -> IsoImage:
        return IsoImage.objects.create(
            host=self.host, name=self.name, path=self.path, pool=self.pool, size=self.source.size,
            uploaded=self.source.size if complete else 0, complete=complete, registered=self.mode == "register",
            added_by=actor,
        )


def _taken(host: Host, name: str, path: str) -> ConflictError:
    return ConflictError(f"{name} ({path}) is already in the ISO library of {host}.", code="name_taken")


def _plan_import(actor: Actor, host: Host, path: str, name: str, mode: str) -> ImportPlan:
    """Permission and validation of an import, in the request (nothing is made yet)."""
    if not is_staff(actor):
        raise PermissionDeniedError("Only staff can register files already on a host.")
    if mode not in IMPORT_MODES:
        raise ValidationError(f"Unknown mode {mode!r}: use register or copy.",
                              fields={"mode": [f"one of {', '.join(IMPORT_MODES)}"]})
    path = clean_host_path(path)
    if mode == "copy":
        name = validate_iso_name(name or posixpath.basename(path))
    else:
        name = (name or posixpath.basename(path)).strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise ValidationError("Give the medium a name (up to 200 characters).", fields={"name": ["invalid name"]})
    source = host_file(host, path)
    target, pool_name = path, source.pool
    if mode == "copy":
        pool = iso_pool(host)
        target, pool_name = pool.volume_path(name), pool.name
    if IsoImage.objects.filter(host=host).filter(Q(path=target) | Q(name=name)).exists():
        raise _taken(host, name, target)
    if mode == "copy":
        if pool.has_volume(name):
            raise ConflictError(f"The ISO pool on {host} already has a file named {name}.", code="name_taken")
        check_room(host, pool, name, source.size, field="path")
    return ImportPlan(host=host, source=source, mode=mode, name=name, path=target, pool=pool_name)


def iso_import(*, actor: Actor, host: Host, path: str, name: str = "", mode: str = "register") -> tuple[IsoImage, Job]:
    """Staff: add a file already on ``host`` to its ISO library, as a job (``iso.import``).

    ``register`` keeps the file where it is; ``copy`` makes the library's own copy in the ISO pool. The row is made
    now, incomplete (not offered as install medium), and completed by the job once the file proved to be an ISO.
    """

    plan = _plan_import(actor, host, path, name, mode)
    verb = "Copy" if mode == "copy" else "Register"
    try:
        with _audit(actor, IMPORT, host, plan.source.path), transaction.atomic():
            iso = plan.row(actor, complete=False)
            job = job_create(
                actor=actor, kind=IMPORT, title=f"{verb} {plan.source.path} as {plan.name} on {host}",
                target_type="iso", target=str(iso.pk), host=host,
                params={"iso_id": iso.pk, "mode": mode, "source": plan.source.path, "name": plan.name,
                        "pool": plan.pool},
                cleanup=[undo_record("media.forget_import", f"removed {plan.name} from the ISO library",
                                     iso_id=iso.pk)],
            )
    except IntegrityError:
        raise _taken(host, plan.name, plan.path) from None
    return iso, job


def iso_register(*, actor: Actor, host: Host, path: str, name: str = "") -> IsoImage:
    """Register a file already on ``host`` at once, in this process (shell, scripts, tests): the same checks as an
    ``iso_import`` job in ``register`` mode, without the job."""
    plan = _plan_import(actor, host, path, name, "register")
    plan.source.check_iso9660()
    try:
        with _audit(actor, "iso.register", host, plan.source.path), transaction.atomic():
            return plan.row(actor, complete=True)
    except IntegrityError:
        raise _taken(host, plan.name, plan.path) from None


# -- the import job (runs in the Celery worker) --------------------------------------------------------------
def iso_import_run(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    actor = get_user_model().objects.filter(pk=ctx.job.actor_id).first() if ctx.job.actor_id else None
    if not is_staff(actor):  # checked again when the job starts: staff status may have been taken away meanwhile
        raise PermissionDeniedError("Only staff can register files already on a host: the job's starter no longer "
                                    "is, so the job stopped before doing anything.")
    iso = IsoImage.objects.select_related("host").filter(pk=p["iso_id"], complete=False).first()
    if iso is None:
        raise ConflictError("The medium was removed from the ISO library before its import began.")
    host = iso.host
    ctx.progress(1, f"Checking {p['source']} on {host}.")
    source = host_file(host, p["source"])
    source.check_iso9660()
    ctx.progress(5, f"{source.path} is an ISO 9660 image ({human(source.size)}).")
    path = source.path
    if p["mode"] == "copy":
        path = _copy_into_pool(ctx, host, source, p["pool"], p["name"])
    ctx.check_cancelled()
    with transaction.atomic():
        done = IsoImage.objects.filter(pk=iso.pk, complete=False).update(
            path=path, size=source.size, uploaded=source.size, complete=True)
        if done:
            ctx.keep()  # the medium is complete: nothing of it may be undone any more
    if not done:
        raise ConflictError(f"{iso.name} was removed from the ISO library meanwhile.")
    ctx.log(f"{iso.name} is in the ISO library of {host} ({human(source.size)}).")
    return {"iso_id": iso.pk, "path": path, "size": source.size}


def _copy_into_pool(ctx: JobContext, host: Host, source: HostFile, pool_name: str, name: str) -> str:
    """Copy ``source`` into a new volume of the ISO pool through libvirt (download → upload streams), piece by piece:
    progress 5..95 %, cancel between pieces, and the partial copy deleted if anything stops it."""
    pool = hv.pool_lookup(host_connection(host), pool_name)
    check_room(host, pool, name, source.size, field="path")
    if pool.has_volume(name):
        raise ConflictError(f"The ISO pool on {host} got a file named {name} after the request was checked; "
                            "it is not ours to touch.")
    undo = {"host_id": host.pk, "pool": pool.name, "name": name}
    ctx.undo("media.delete_copy", f"deleted the partial copy {pool.volume_path(name)}", **undo)
    try:
        volume = pool.create_media_volume(name, source.size)
    except hv.AlreadyExists:
        ctx.forget_undo("media.delete_copy", **undo)  # someone else's file: never delete it
        raise
    ctx.log(f"Copying {source.path} → {volume.path} ({human(source.size)}).")
    volume.upload(_pieces(ctx, source.chunks(), source.size), length=source.size)
    ctx.progress(95, f"Copied {human(source.size)}.")
    return volume.path


def _pieces(ctx: JobContext, chunks: Iterator[bytes], total: int) -> Iterator[bytes]:
    """Pass the pieces on, reporting progress (5..95 %) and checking for cancel between them."""
    sent, shown, checked = 0, 5, time.monotonic()
    with closing(chunks):  # type: ignore[type-var]
        for data in chunks:
            if time.monotonic() - checked >= CANCEL_CHECK:
                ctx.check_cancelled()
                checked = time.monotonic()
            yield data
            sent += len(data)
            percent = 5 + 90 * sent // max(total, 1)
            if percent > shown:
                ctx.progress(percent)
                shown = percent


def iso_delete(*, actor: Actor, iso: IsoImage) -> None:
    """Remove a medium: refused while a VM has it in a drive. Uploaded files are deleted; registered files are
    only forgotten (the portal never deletes a file it did not make)."""
    _may_change(actor, iso)
    users = iso_users(iso.host, actor=actor).get(iso.path)
    if users:
        raise ConflictError(f"{iso.name} is in use by {users}: eject it there first.", code="in_use")
    job = iso_job(iso) if not iso.complete else None
    importing = job is not None and job.kind == IMPORT and not job.finished_state
    if importing:
        # queued: cancelled and undone now; running: the worker stops at its next piece and deletes its partial copy
        job_cancel(actor=actor, job=job)
    elif job is not None and not job.finished_state:
        job_cancelled(job_id=job.pk, message="Upload abandoned: the unfinished file was deleted.")
    with _audit(actor, "iso.delete", iso.host, iso.path):
        if not iso.registered and iso.pool and not importing:
            try:
                hv.pool_lookup(host_connection(iso.host), iso.pool).volume(iso.name).delete()
            except hv.NotFound:
                pass
        iso.delete()
