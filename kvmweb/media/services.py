"""Every change to the ISO library: permission check → validation → libvirt → audit row.

Uploads go into a directory pool the portal owns on each host (``KVMWEB_ISO_POOL`` in ``KVMWEB_ISO_DIR``), created
on demand, through libvirt's volume upload stream — so remote hosts work too — in pieces the browser sends one
after another (``iso_upload_piece``); no piece is ever held whole in memory either.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F

from kvmweb import hypervisor as hv
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import undo_record
from kvmweb.jobs.services import job_cancelled, job_open, job_progress, job_succeed
from kvmweb.machines.selectors import is_staff

from .models import IsoImage
from .selectors import iso_users

Actor = AbstractBaseUser | AnonymousUser
MAX_ISO_BYTES = 64 * 1024**4  # 64 TiB: anything above is a typo


def _audit(actor: Actor, action: str, host: Host, target: str):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="iso", target=target, host=host.uri)


def can_upload(actor: Actor) -> bool:
    return is_staff(actor) or (getattr(actor, "is_authenticated", False) and settings.KVMWEB_ISO_UPLOAD_BY_USERS)


def can_change(actor: Actor, iso: IsoImage) -> bool:
    return is_staff(actor) or (getattr(actor, "is_authenticated", False) and iso.added_by_id == actor.pk)


def _may_change(actor: Actor, iso: IsoImage) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise NotFoundError("No such install medium.")
    if not can_change(actor, iso):
        raise PermissionDeniedError("Only staff or the person who added a medium may change it.")


def iso_pool(host: Host) -> hv.Pool:
    """The portal's ISO pool on ``host``, created (folder, pool, autostart) the first time it is needed."""
    return hv.ensure_dir_pool(host_connection(host), settings.KVMWEB_ISO_POOL, settings.KVMWEB_ISO_DIR)


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
        pool.refresh()
        info = pool.info()
        if size > info.available:
            raise ValidationError(
                f"The ISO pool on {host} has {info.available // 1024**2} MiB free; {name} needs {size // 1024**2} MiB.",
                fields={"size": ["not enough room in the ISO pool"]})
        volume = hv.create_media_volume(pool, name, size)
        try:
            with transaction.atomic():
                iso = IsoImage.objects.create(host=host, name=name, path=volume.path, pool=pool.name, size=size,
                                              added_by=actor if actor.is_authenticated else None)
                job_open(
                    actor=actor, kind="iso.upload", title=f"Upload {name} to {host}", target_type="iso",
                    target=str(iso.pk), host=host, params={"iso_id": iso.pk, "size": size},
                    cleanup=[undo_record("media.delete_upload", f"removed the unfinished upload {name}",
                                         iso_id=iso.pk, uri=host.uri)],
                )
                return iso
        except IntegrityError:
            volume.delete()
            raise ConflictError(f"The ISO library of {host} already has {name}.", code="name_taken") from None


def upload_job(iso: IsoImage) -> Job | None:
    return Job.objects.filter(kind="iso.upload", target_type="iso", target=str(iso.pk)).order_by("-pk").first()


def iso_upload_piece(*, actor: Actor, iso: IsoImage, offset: int, length: int, chunks: Iterable[bytes]) -> IsoImage:
    """Write the next piece of an upload; pieces come in order (``offset`` must be what was received so far)."""
    _may_change(actor, iso)
    if iso.complete:
        raise ConflictError(f"{iso.name} is already complete.", code="complete")
    job = upload_job(iso)
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


def iso_register(*, actor: Actor, host: Host, path: str, name: str = "") -> IsoImage:
    """Staff: add a file that is already on the host (in one of its storage pools, or a local file)."""
    if not is_staff(actor):
        raise PermissionDeniedError("Only staff can register files already on a host.")
    path = (path or "").strip()
    if not path.startswith("/") or posixpath.normpath(path) != path or any(c in path for c in "\0\n\r"):
        raise ValidationError(f"{path!r} is not a clean absolute path.", fields={"path": ["an absolute path"]})
    name = (name or posixpath.basename(path)).strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise ValidationError("Give the medium a name (up to 200 characters).", fields={"name": ["invalid name"]})
    conn = host_connection(host)
    volume = hv.volume_for_path(conn, path)
    if volume is not None:
        size, pool = volume.spec().capacity, volume.pool_name()
    elif host.uri.startswith(("qemu:///", "test:///")) and os.path.isfile(path):
        size, pool = os.path.getsize(path), ""
    else:
        raise ValidationError(f"No file {path} on {host} (it must be a file in one of the host's storage pools, "
                              "or a local file).", fields={"path": ["no such file"]})
    if IsoImage.objects.filter(host=host, path=path).exists() or IsoImage.objects.filter(host=host, name=name).exists():
        raise ConflictError(f"{name} ({path}) is already in the ISO library of {host}.", code="name_taken")
    with _audit(actor, "iso.register", host, path):
        return IsoImage.objects.create(host=host, name=name, path=path, pool=pool, size=size, uploaded=size,
                                       complete=True, registered=True, added_by=actor)


def iso_delete(*, actor: Actor, iso: IsoImage) -> None:
    """Remove a medium: refused while a VM has it in a drive. Uploaded files are deleted; registered files are
    only forgotten (the portal never deletes a file it did not make)."""
    _may_change(actor, iso)
    users = iso_users(iso.host).get(iso.path, [])
    if users:
        raise ConflictError(f"{iso.name} is in use by {', '.join(users)}: eject it there first.", code="in_use")
    job = upload_job(iso) if not iso.complete else None
    if job is not None and not job.finished_state:
        job_cancelled(job_id=job.pk, message="Upload abandoned: the unfinished file was deleted.")
    with _audit(actor, "iso.delete", iso.host, iso.path):
        if not iso.registered and iso.pool:
            try:
                hv.pool_lookup(host_connection(iso.host), iso.pool).volume(iso.name).delete()
            except hv.NotFound:
                pass
        iso.delete()
