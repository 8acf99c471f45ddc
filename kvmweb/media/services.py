"""Every change to the media library — install media (the ISO library) and disk images (the image library), one
machinery for both kinds (a :class:`Library` says what differs): permission check → validation → libvirt → audit.

Uploads go into a directory pool the portal owns on each host for each kind (``KVMWEB_ISO_POOL`` in
``KVMWEB_ISO_DIR``; ``KVMWEB_IMAGE_POOL`` in ``KVMWEB_IMAGE_DIR``), created on demand, through libvirt's volume
upload stream — so remote hosts work too — in pieces the browser sends one after another (``iso_upload_piece``);
no piece is ever held whole in memory either.

Staff add a file already on a host with ``iso_import``/``image_import`` (a Celery job): ``register`` keeps the file
where it is, ``copy`` gives the library its own copy in its pool, streamed through libvirt in pieces (progress,
cancel between pieces). The job first checks the file: an ISO 9660 image for the ISO library; for the image library
:func:`image_check` (qcow2 or raw, a virtual size, no backing file outside the library, no external data file, not
an ISO), which also runs when an upload's last piece arrives.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError, Q

from kvmweb import hypervisor as hv
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobContext, undo_record
from kvmweb.jobs.services import (
    job_cancel, job_cancelled, job_create, job_fail, job_open, job_progress, job_succeed, run_cleanup,
)
from kvmweb.access.permissions import Actor, actor_id, is_authenticated, is_staff

from .models import IsoImage
from .selectors import image_users, iso_users

human = hv.human
MAX_ISO_BYTES = 64 * 1024**4  # 64 TiB: anything above is a typo
IMPORT_MODES = ("register", "copy")
LOCAL_URIS = ("qemu:///", "test:///")  # hosts whose files this machine can read directly
CANCEL_CHECK = 0.1  # seconds between cancel checks while copying
IMAGE_FORMATS = ("qcow2", "raw")
HEAD_BYTES = 64 * 1024  # what is read of a file to know it: enough for an ISO 9660 signature and a qcow2 header
QEMU_IMG_TIMEOUT = 60  # seconds
OS_VARIANT = re.compile(r"^[a-z0-9.\-]{1,64}$")
BOOT_FILES = (("kernel", ".vmlinuz"), ("initrd", ".initrd"))  # direct kernel boot: the field, its copy's suffix


@dataclass(frozen=True)
class Library:
    """One kind of the media library: its words, its pool, its file names and its jobs."""

    kind: str  # IsoImage.Kind, also the jobs' and the audit's target type
    title: str  # "ISO library"
    noun: str  # "install medium"
    plural: str  # "install media"
    pool_title: str  # "ISO pool"
    suffixes: tuple[str, ...]
    pool_setting: str  # the settings naming its pool and its folder
    dir_setting: str

    @property
    def upload_job(self) -> str:
        return f"{self.kind}.upload"

    @property
    def import_job(self) -> str:
        return f"{self.kind}.import"

    def pool(self, host: Host) -> hv.Pool:
        """The portal's pool of this kind on ``host``, created (folder, pool, autostart) the first time it is
        needed."""
        return hv.pool_ensure(host_connection(host), getattr(settings, self.pool_setting),
                              getattr(settings, self.dir_setting))


ISO = Library(kind=IsoImage.Kind.ISO, title="ISO library", noun="install medium", plural="install media",
              pool_title="ISO pool", suffixes=(".iso",), pool_setting="KVMWEB_ISO_POOL", dir_setting="KVMWEB_ISO_DIR")
IMAGE = Library(kind=IsoImage.Kind.IMAGE, title="image library", noun="disk image", plural="disk images",
                pool_title="image pool", suffixes=(".qcow2", ".img", ".raw"), pool_setting="KVMWEB_IMAGE_POOL",
                dir_setting="KVMWEB_IMAGE_DIR")
LIBRARIES = {lib.kind: lib for lib in (ISO, IMAGE)}


def library(row: IsoImage) -> Library:
    return LIBRARIES[row.kind]


def _audit(actor: Actor, action: str, host: Host, target: str, lib: Library = ISO):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type=lib.kind, target=target, host=host.uri)


def can_upload(actor: Actor) -> bool:
    return is_staff(actor) or (is_authenticated(actor) and settings.KVMWEB_ISO_UPLOAD_BY_USERS)


def can_change(actor: Actor, iso: IsoImage) -> bool:
    return is_staff(actor) or (is_authenticated(actor) and iso.added_by_id == actor_id(actor))


def _may_change(actor: Actor, iso: IsoImage) -> None:
    lib = library(iso)
    if not getattr(actor, "is_authenticated", False):
        raise NotFoundError(f"No such {lib.noun}.")
    if not can_change(actor, iso):
        raise PermissionDeniedError(f"Only staff or the person who added {'a medium' if lib is ISO else 'an image'} "
                                    "may change it.")


def iso_pool(host: Host) -> hv.Pool:
    """The portal's ISO pool on ``host``, created (folder, pool, autostart) the first time it is needed."""
    return ISO.pool(host)


def image_pool(host: Host) -> hv.Pool:
    """The portal's image pool on ``host`` (disk images of the image library), created the first time it is
    needed."""
    return IMAGE.pool(host)


def upload_file_name(name: str) -> str:
    """A browser's file name as a volume name: characters a file name in the pool may not hold become '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename((name or "").strip()))
    return cleaned.lstrip("._-")[-64:]


def validate_file_name(name: str, lib: Library = ISO) -> str:
    """``name`` as the name of a file in ``lib``'s pool (a 400 on ``name`` when it cannot be one)."""
    name = upload_file_name(name)
    try:
        hv.validate_volume_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"name": [exc.detail]}) from None
    if not name.lower().endswith(lib.suffixes):
        ends = " or ".join(lib.suffixes)
        raise ValidationError(f"{name!r}: the name of {'an' if lib is ISO else 'a'} {lib.noun} ends with {ends}.",
                              fields={"name": [f"must end with {ends}"]})
    return name


# -- what a disk image may carry ------------------------------------------------------------------------------
def image_options(*, actor: Actor, public: bool | None = None, os_variant: str = "", cmdline: str = "") -> dict[str, Any]:
    """The row fields of a new disk image (or a change of them): ``public`` defaults to staff's images being
    shared and users' being their own; only staff publish."""
    if public is None:
        public = is_staff(actor)
    if public and not is_staff(actor):
        raise PermissionDeniedError("Only staff can publish disk images.")
    options: dict[str, Any] = {"public": bool(public)}
    os_variant = (os_variant or "").strip()
    if os_variant and not OS_VARIANT.match(os_variant):
        raise ValidationError(f"{os_variant!r} is not an OS short id (such as debian12 or ubuntu24.04).",
                              fields={"os_variant": ["an osinfo short id"]})
    options["os_variant"] = os_variant
    cmdline = (cmdline or "").strip()
    if len(cmdline) > 1024 or any(ord(c) < 32 for c in cmdline):
        raise ValidationError("The kernel command line is one line of up to 1024 characters.",
                              fields={"cmdline": ["one line, up to 1024 characters"]})
    options["cmdline"] = cmdline
    return options


def _qemu_img_info(path: str) -> hv.ImageInfo:
    """``qemu-img info`` of a local file (-U: also while a guest has it open; it never opens a backing file)."""
    try:
        done = subprocess.run(["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True,
                              timeout=QEMU_IMG_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidationError(f"Cannot inspect {path}: {exc}.", fields={"path": ["unreadable"]}) from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["qemu-img failed"])[-1]
        raise ValidationError(f"{path} is not a disk image qemu-img can read ({reason}).",
                              fields={"path": ["not a disk image"]})
    facts = json.loads(done.stdout)
    backing = facts.get("full-backing-filename") or facts.get("backing-filename")
    return hv.ImageInfo(format=str(facts.get("format", "")), virtual_size=int(facts.get("virtual-size", 0)),
                        backing_path=backing or None, backing_format=facts.get("backing-filename-format"))


def image_check(host: Host, source: HostFile, *, field: str = "path") -> dict[str, Any]:
    """Whether ``source`` may be a disk image of ``host``'s library; its row fields (format, virtual size) if so,
    else a 400 on ``field`` saying why. ``qemu-img info`` answers for local hosts, libvirt's probe of the file's
    header (a refresh of its pool, then its volume XML) for remote ones; the first bytes are read either way."""
    path = source.path

    def refuse(why: str, short: str) -> ValidationError:
        return ValidationError(f"{path} {why}", fields={field: [short]})

    if host.uri.startswith(LOCAL_URIS) and os.path.isfile(path):
        info: hv.ImageInfo | None = _qemu_img_info(path)
    else:
        info = hv.volume_image_info(host_connection(host), path)
    if info is None:
        raise refuse("is in no storage pool of the host.", "no such file")
    if info.format not in IMAGE_FORMATS:
        raise refuse(f"is a {info.format or 'unknown'} image: the image library takes qcow2 or raw.",
                     "not qcow2 or raw")
    if info.virtual_size <= 0:
        raise refuse("has a virtual size of 0 bytes: no disk to start from.", "empty disk")
    if info.backing_path:
        base = IsoImage.objects.filter(kind=IMAGE.kind, host=host, path=info.backing_path, complete=True).first()
        if base is None:
            raise refuse(f"sits on {info.backing_path}, which is not an image of the library: only images of the "
                         "library may be backing files.", "backing file outside the library")
        if info.backing_format != base.format:
            raise refuse(f"reads its backing file {base.name} as {info.backing_format or 'an unstated format'}, but "
                         f"it is {base.format}.", "wrong backing format")
    head = source.head()
    if info.format == "raw" and hv.looks_like_iso9660(head):
        raise refuse("is an ISO 9660 image (an install medium): add it to the ISO library instead.", "an ISO image")
    refused = hv.check_qcow2_header(head) if info.format == "qcow2" else []
    if refused:
        raise refuse(f"uses {' and '.join(refused)}, which library images may not.", "unsupported qcow2 feature")
    return {"format": info.format, "virtual_size": info.virtual_size}


# -- uploads --------------------------------------------------------------------------------------------------
def iso_upload_begin(*, actor: Actor, host: Host, name: str, size: int) -> IsoImage:
    """Make room for an upload: an empty volume of ``size`` bytes in the host's ISO pool, and its row."""
    return _upload_begin(ISO, actor=actor, host=host, name=name, size=size, fields={})


def image_upload_begin(*, actor: Actor, host: Host, name: str, size: int, public: bool | None = None,
                       os_variant: str = "", cmdline: str = "") -> IsoImage:
    """Make room for the upload of a disk image (.qcow2, .img, .raw) into the host's image pool; its last piece
    has it checked (:func:`image_check`)."""
    if not can_upload(actor):
        raise PermissionDeniedError("Only staff can add disk images.")
    fields = image_options(actor=actor, public=public, os_variant=os_variant, cmdline=cmdline)
    return _upload_begin(IMAGE, actor=actor, host=host, name=name, size=size, fields=fields)


def _upload_begin(lib: Library, *, actor: Actor, host: Host, name: str, size: int, fields: dict[str, Any]) -> IsoImage:
    if not can_upload(actor):
        raise PermissionDeniedError(f"Only staff can add {lib.plural}.")
    name = validate_file_name(name, lib)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_ISO_BYTES:
        raise ValidationError("The file size must be above zero (and below 64 TiB).", fields={"size": ["invalid size"]})
    if IsoImage.objects.filter(host=host, name=name).exists():
        raise ConflictError(f"The {lib.title} of {host} already has {name}.", code="name_taken")
    with _audit(actor, lib.upload_job, host, name, lib):
        pool = lib.pool(host)
        check_room(host, pool, name, size, field="size", lib=lib)
        volume = pool.create_media_volume(name, size)
        try:
            with transaction.atomic():
                iso = IsoImage.objects.create(kind=lib.kind, host=host, name=name, path=volume.path, pool=pool.name,
                                              size=size, added_by=actor if actor.is_authenticated else None, **fields)
                job_open(
                    actor=actor, kind=lib.upload_job, title=f"Upload {name} to {host}", target_type=lib.kind,
                    target=str(iso.pk), host=host, params={"iso_id": iso.pk, "size": size},
                    cleanup=[undo_record("media.delete_upload", f"removed the unfinished upload {name}",
                                         iso_id=iso.pk, uri=host.uri)],
                )
                return iso
        except IntegrityError:
            volume.delete()
            raise ConflictError(f"The {lib.title} of {host} already has {name}.", code="name_taken") from None


def check_room(host: Host, pool: hv.Pool, name: str, size: int, *, field: str, lib: Library = ISO) -> None:
    """Refuse a file of ``size`` bytes that the library's pool has no room for."""
    pool.refresh()
    info = pool.info()
    if size > info.available:
        raise ValidationError(
            f"The {lib.pool_title} on {host} has {human(info.available)} free; {name} needs {human(size)}.",
            fields={field: [f"not enough room in the {lib.pool_title}"]})


def iso_job(iso: IsoImage) -> Job | None:
    """The job that brings this file (of either kind) in: its upload, or its import."""
    lib = library(iso)
    return (Job.objects.filter(kind__in=(lib.upload_job, lib.import_job), target_type=lib.kind, target=str(iso.pk))
            .order_by("-pk").first())


def iso_upload_piece(*, actor: Actor, iso: IsoImage, offset: int, length: int, chunks: Iterable[bytes]) -> IsoImage:
    """Write the next piece of an upload (of either kind); pieces come in order (``offset`` must be what was
    received so far). A disk image is checked when its last piece is in: refused, it is deleted (a 400 says why)."""
    _may_change(actor, iso)
    lib = library(iso)
    if iso.complete:
        raise ConflictError(f"{iso.name} is already complete.", code="complete")
    job = iso_job(iso)
    if job is not None and job.kind != lib.upload_job:
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
        facts = _checked_upload(iso, volume, job) if lib is IMAGE else {}
        for key, value in facts.items():
            setattr(iso, key, value)
        iso.complete = True
        iso.save(update_fields=["complete", *facts])
    if job is not None:
        if iso.complete:
            job_succeed(job_id=job.pk, message=f"{iso.name} is in the {lib.title} ({iso.size} bytes).",
                        result={"path": iso.path})
        else:
            job_progress(job_id=job.pk, percent=iso.uploaded * 100 // iso.size)
    return iso


def _checked_upload(iso: IsoImage, volume: hv.Volume, job: Job | None) -> dict[str, Any]:
    """:func:`image_check` of a whole upload; when it refuses, the upload is deleted (its job's undo step) and
    fails, and the refusal goes on to the sender."""
    try:
        return image_check(iso.host, HostFile(path=iso.path, size=iso.size, pool=iso.pool, volume=volume),
                           field="file")
    except ValidationError as exc:
        if job is not None:
            run_cleanup(job.pk)
            job_fail(job_id=job.pk, error=exc.detail)
        else:
            volume.delete()
            iso.delete()
        raise


# -- files already on a host ----------------------------------------------------------------------------------
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

    def head(self, size: int = HEAD_BYTES) -> bytes:
        """Its first ``size`` bytes (a 400 when it cannot be read)."""
        try:
            return hv.read_head(self.chunks(), size)
        except OSError as exc:
            raise ValidationError(f"Cannot read {self.path}: {exc.strerror or exc}.",
                                  fields={"path": ["unreadable"]}) from None

    def check_iso9660(self) -> None:
        if not hv.looks_like_iso9660(self.head()):
            raise ValidationError(f"{self.path} is not an ISO 9660 image (no CD001 signature).",
                                  fields={"path": ["not an ISO 9660 image"]})


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as src:
        while data := src.read(hv.STREAM_CHUNK):
            yield data


def clean_host_path(path: str, *, field: str = "path") -> str:
    path = (path or "").strip()
    if not path.startswith("/") or posixpath.normpath(path) != path or any(c in path for c in "\0\n\r"):
        raise ValidationError(f"{path!r} is not a clean absolute path.", fields={field: ["an absolute path"]})
    return path


def host_file(host: Host, path: str, *, field: str = "path") -> HostFile:
    """The file ``path`` on ``host`` (a clear 400 on ``field`` when there is none)."""
    volume = hv.volume_by_path(host_connection(host), path)
    if volume is not None:
        spec = volume.spec()
        return HostFile(path=path, size=spec.physical or spec.capacity, pool=volume.pool_name(), volume=volume)
    if host.uri.startswith(LOCAL_URIS) and os.path.isfile(path):
        return HostFile(path=path, size=os.path.getsize(path), pool="", volume=None)
    raise ValidationError(f"No file {path} on {host} (it must be a file in one of the host's storage pools, "
                          "or a local file).", fields={field: ["no such file"]})


@dataclass(frozen=True)
class ImportPlan:
    """A checked request to add a host's file to the library: the row to make and where its bytes come from."""

    lib: Library
    host: Host
    source: HostFile
    mode: str
    name: str
    path: str  # the file's path in the library: the source itself (register) or its copy in the pool
    pool: str
    fields: dict[str, Any] = field(default_factory=dict)  # a disk image's own fields
    boot: dict[str, tuple[str, str]] = field(default_factory=dict)  # kernel/initrd → (source, path in the library)

    def row(self, actor: Actor, *, complete: bool, **facts: Any) -> IsoImage:
        boot = {key: target for key, (_, target) in self.boot.items()}
        return IsoImage.objects.create(
            kind=self.lib.kind, host=self.host, name=self.name, path=self.path, pool=self.pool,
            size=self.source.size, uploaded=self.source.size if complete else 0, complete=complete,
            registered=self.mode == "register", added_by=actor, **self.fields, **boot, **facts,
        )


def _taken(lib: Library, host: Host, name: str, path: str) -> ConflictError:
    return ConflictError(f"{name} ({path}) is already in the {lib.title} of {host}.", code="name_taken")


def _plan_import(lib: Library, actor: Actor, host: Host, path: str, name: str, mode: str,
                 fields: dict[str, Any] | None = None, boot: dict[str, str] | None = None) -> ImportPlan:
    """Permission and validation of an import, in the request (nothing is made yet)."""
    if not is_staff(actor):
        raise PermissionDeniedError("Only staff can register files already on a host.")
    if mode not in IMPORT_MODES:
        raise ValidationError(f"Unknown mode {mode!r}: use register or copy.",
                              fields={"mode": [f"one of {', '.join(IMPORT_MODES)}"]})
    path = clean_host_path(path)
    if mode == "copy":
        name = validate_file_name(name or posixpath.basename(path), lib)
    else:
        name = (name or posixpath.basename(path)).strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise ValidationError(f"Give the {lib.noun} a name (up to 200 characters).",
                                  fields={"name": ["invalid name"]})
    source = host_file(host, path)
    sources = {key: host_file(host, clean_host_path(value, field=key), field=key).path
               for key, value in (boot or {}).items() if value}
    target, pool_name, copies = path, source.pool, {key: (src, src) for key, src in sources.items()}
    if mode == "copy":
        pool = lib.pool(host)
        target, pool_name = pool.volume_path(name), pool.name
        copies = {key: (src, pool.volume_path(name + suffix)) for key, suffix in BOOT_FILES
                  if (src := sources.get(key))}
    if IsoImage.objects.filter(host=host).filter(Q(path=target) | Q(name=name)).exists():
        raise _taken(lib, host, name, target)
    if mode == "copy":
        for volume_path in [target, *(copy for _, copy in copies.values())]:
            if pool.has_volume(posixpath.basename(volume_path)):
                raise ConflictError(f"The {lib.pool_title} on {host} already has a file named "
                                    f"{posixpath.basename(volume_path)}.", code="name_taken")
        check_room(host, pool, name, source.size, field="path", lib=lib)
    return ImportPlan(lib=lib, host=host, source=source, mode=mode, name=name, path=target, pool=pool_name,
                      fields=fields or {}, boot=copies)


def iso_import(*, actor: Actor, host: Host, path: str, name: str = "", mode: str = "register") -> tuple[IsoImage, Job]:
    """Staff: add a file already on ``host`` to its ISO library, as a job (``iso.import``).

    ``register`` keeps the file where it is; ``copy`` makes the library's own copy in the ISO pool. The row is made
    now, incomplete (not offered as install medium), and completed by the job once the file proved to be an ISO.
    """
    return _import(_plan_import(ISO, actor, host, path, name, mode), actor)


def image_import(*, actor: Actor, host: Host, path: str, name: str = "", mode: str = "register", kernel: str = "",
                 initrd: str = "", cmdline: str = "", os_variant: str = "", public: bool | None = None,
                 ) -> tuple[IsoImage, Job]:
    """Staff: add a disk image already on ``host`` to its image library, as a job (``image.import``), the way
    :func:`iso_import` adds install media. ``kernel``/``initrd`` (host paths) and ``cmdline`` make it an image
    that boots its kernel directly; in ``copy`` mode they are copied into the image pool too
    (``<name>.vmlinuz``, ``<name>.initrd``). The job checks the image (:func:`image_check`) before completing."""
    fields = image_options(actor=actor, public=public, os_variant=os_variant, cmdline=cmdline)
    plan = _plan_import(IMAGE, actor, host, path, name, mode, fields, {"kernel": kernel, "initrd": initrd})
    return _import(plan, actor)


def _import(plan: ImportPlan, actor: Actor) -> tuple[IsoImage, Job]:
    lib, host = plan.lib, plan.host
    verb = "Copy" if plan.mode == "copy" else "Register"
    try:
        with _audit(actor, lib.import_job, host, plan.source.path, lib), transaction.atomic():
            iso = plan.row(actor, complete=False)
            job = job_create(
                actor=actor, kind=lib.import_job, title=f"{verb} {plan.source.path} as {plan.name} on {host}",
                target_type=lib.kind, target=str(iso.pk), host=host,
                params={"iso_id": iso.pk, "mode": plan.mode, "source": plan.source.path, "name": plan.name,
                        "pool": plan.pool, **{key: src for key, (src, _) in plan.boot.items()}},
                cleanup=[undo_record("media.forget_import", f"removed {plan.name} from the {lib.title}",
                                     iso_id=iso.pk)],
            )
    except IntegrityError:
        raise _taken(lib, host, plan.name, plan.path) from None
    return iso, job


def iso_register(*, actor: Actor, host: Host, path: str, name: str = "") -> IsoImage:
    """Register a file already on ``host`` at once, in this process (shell, scripts, tests): the same checks as an
    ``iso_import`` job in ``register`` mode, without the job."""
    plan = _plan_import(ISO, actor, host, path, name, "register")
    plan.source.check_iso9660()
    return _register(plan, actor, {})


def image_register(*, actor: Actor, host: Host, path: str, name: str = "", kernel: str = "", initrd: str = "",
                   cmdline: str = "", os_variant: str = "", public: bool | None = None) -> IsoImage:
    """Register a disk image already on ``host`` at once, in this process (shell, scripts, tests): the checks of an
    ``image_import`` job in ``register`` mode, without the job."""
    fields = image_options(actor=actor, public=public, os_variant=os_variant, cmdline=cmdline)
    plan = _plan_import(IMAGE, actor, host, path, name, "register", fields, {"kernel": kernel, "initrd": initrd})
    return _register(plan, actor, image_check(host, plan.source))


def _register(plan: ImportPlan, actor: Actor, facts: dict[str, Any]) -> IsoImage:
    try:
        with _audit(actor, f"{plan.lib.kind}.register", plan.host, plan.source.path, plan.lib), transaction.atomic():
            return plan.row(actor, complete=True, **facts)
    except IntegrityError:
        raise _taken(plan.lib, plan.host, plan.name, plan.path) from None


# -- the import job (runs in the Celery worker) --------------------------------------------------------------
def iso_import_run(ctx: JobContext) -> dict[str, Any]:
    """The body of an import job of either kind."""
    p = ctx.params
    actor = get_user_model().objects.filter(pk=ctx.job.actor_id).first() if ctx.job.actor_id else None
    if not is_staff(actor):  # checked again when the job starts: staff status may have been taken away meanwhile
        raise PermissionDeniedError("Only staff can register files already on a host: the job's starter no longer "
                                    "is, so the job stopped before doing anything.")
    iso = IsoImage.objects.select_related("host").filter(pk=p["iso_id"], complete=False).first()
    if iso is None:
        raise ConflictError("The file was removed from the library before its import began.")
    lib, host = library(iso), iso.host
    ctx.progress(1, f"Checking {p['source']} on {host}.")
    source = host_file(host, p["source"])
    facts: dict[str, Any] = {}
    if lib is ISO:
        source.check_iso9660()
        ctx.progress(5, f"{source.path} is an ISO 9660 image ({human(source.size)}).")
    else:
        facts = image_check(host, source)
        ctx.progress(5, f"{source.path} is a {facts['format']} disk image of {human(facts['virtual_size'])}.")
    path, boot = source.path, {key: p[key] for key, _ in BOOT_FILES if p.get(key)}
    if p["mode"] == "copy":
        path = _copy_into_pool(ctx, host, source, p["pool"], p["name"], lib, (5, 90 if boot else 95))
        for key, suffix in BOOT_FILES:
            if key in boot:
                boot[key] = _copy_into_pool(ctx, host, host_file(host, boot[key], field=key), p["pool"],
                                            p["name"] + suffix, lib, (90, 95))
        if lib is IMAGE:
            facts = image_check(host, host_file(host, path))  # the library's own copy is what counts
    ctx.check_cancelled()
    with transaction.atomic():
        done = IsoImage.objects.filter(pk=iso.pk, complete=False).update(
            path=path, size=source.size, uploaded=source.size, complete=True, **boot, **facts)
        if done:
            ctx.keep()  # the file is complete: nothing of it may be undone any more
    if not done:
        raise ConflictError(f"{iso.name} was removed from the {lib.title} meanwhile.")
    ctx.log(f"{iso.name} is in the {lib.title} of {host} ({human(source.size)}).")
    return {"iso_id": iso.pk, "path": path, "size": source.size}


def _copy_into_pool(ctx: JobContext, host: Host, source: HostFile, pool_name: str, name: str, lib: Library = ISO,
                    span: tuple[int, int] = (5, 95)) -> str:
    """Copy ``source`` into a new volume of the library's pool through libvirt (download → upload streams), piece by
    piece: progress over ``span`` %, cancel between pieces, and the partial copy deleted if anything stops it."""
    pool = hv.pool_lookup(host_connection(host), pool_name)
    check_room(host, pool, name, source.size, field="path", lib=lib)
    if pool.has_volume(name):
        raise ConflictError(f"The {lib.pool_title} on {host} got a file named {name} after the request was checked; "
                            "it is not ours to touch.")
    undo = {"host_id": host.pk, "pool": pool.name, "name": name}
    ctx.undo("media.delete_copy", f"deleted the partial copy {pool.volume_path(name)}", **undo)
    try:
        volume = pool.create_media_volume(name, source.size)
    except hv.AlreadyExists:
        ctx.forget_undo("media.delete_copy", **undo)  # someone else's file: never delete it
        raise
    ctx.log(f"Copying {source.path} → {volume.path} ({human(source.size)}).")
    volume.upload(_pieces(ctx, source.chunks(), source.size, span), length=source.size)
    ctx.progress(span[1], f"Copied {human(source.size)}.")
    return volume.path


def _pieces(ctx: JobContext, chunks: Iterator[bytes], total: int, span: tuple[int, int]) -> Iterator[bytes]:
    """Pass the pieces on, reporting progress (over ``span`` %) and checking for cancel between them."""
    low, high = span
    sent, shown, checked = 0, low, time.monotonic()
    with closing(chunks):  # type: ignore[type-var]
        for data in chunks:
            if time.monotonic() - checked >= CANCEL_CHECK:
                ctx.check_cancelled()
                checked = time.monotonic()
            yield data
            sent += len(data)
            percent = low + (high - low) * sent // max(total, 1)
            if percent > shown:
                ctx.progress(percent)
                shown = percent


# -- changes and removal --------------------------------------------------------------------------------------
def image_update(*, actor: Actor, image: IsoImage, name: str | None = None, public: bool | None = None,
                 os_variant: str | None = None, cmdline: str | None = None) -> IsoImage:
    """Staff: rename a disk image, publish or unpublish it, change its OS or kernel command line (its file stays
    as it is). Only what is given changes."""
    if not is_staff(actor):
        raise PermissionDeniedError("Only staff can change disk images.")
    changes = image_options(actor=actor, public=image.public if public is None else public,
                            os_variant=image.os_variant if os_variant is None else os_variant,
                            cmdline=image.cmdline if cmdline is None else cmdline)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
            raise ValidationError("Give the disk image a name (up to 200 characters).",
                                  fields={"name": ["invalid name"]})
        if IsoImage.objects.filter(host=image.host, name=name).exclude(pk=image.pk).exists():
            raise _taken(IMAGE, image.host, name, image.path)
        changes["name"] = name
    with _audit(actor, "image.update", image.host, image.path, IMAGE):
        for key, value in changes.items():
            setattr(image, key, value)
        image.save(update_fields=list(changes))
    return image


def _owned_volumes(iso: IsoImage) -> list[str]:
    """The library's own files of a row: its volume, and a copied kernel and initrd (none for registered files)."""
    if iso.registered or not iso.pool:
        return []
    volume = posixpath.basename(iso.path) or iso.name
    return [volume, *(volume + suffix for key, suffix in BOOT_FILES if getattr(iso, key))]


def iso_delete(*, actor: Actor, iso: IsoImage) -> None:
    """Remove a file of the library (either kind): refused while a VM has it in a drive, while a volume sits on it
    (disk images: a VM's overlay) and while a template uses it. Uploaded and copied files are deleted; registered
    files are only forgotten (the portal never deletes a file it did not make)."""
    _may_change(actor, iso)
    lib = library(iso)
    users = (image_users(iso.host, actor=actor, paths=[iso.path]) if lib is IMAGE
             else iso_users(iso.host, actor=actor)).get(iso.path)
    if users:
        raise ConflictError(f"{iso.name} is in use by {users}: "
                            f"{'eject it there first' if lib is ISO else 'delete those first'}.", code="in_use")
    job = iso_job(iso) if not iso.complete else None
    importing = job if job is not None and job.kind == lib.import_job and not job.finished_state else None
    with _audit(actor, f"{lib.kind}.delete", iso.host, iso.path, lib), transaction.atomic():
        try:
            iso.delete()  # first: a template that uses the image keeps it (and its file)
        except ProtectedError as exc:
            names = sorted(str(t) for t in exc.protected_objects)
            raise ConflictError(f"{iso.name} is used by the template{'s' if len(names) > 1 else ''} "
                                f"{', '.join(names)}: delete or change those first.", code="in_use") from None
        if importing is not None:
            # queued: cancelled and undone now; running: the worker stops at its next piece and deletes its copies
            job_cancel(actor=actor, job=importing)
            return
        if job is not None and not job.finished_state:
            job_cancelled(job_id=job.pk, message="Upload abandoned: the unfinished file was deleted.")
        for volume in _owned_volumes(iso):
            try:
                hv.pool_lookup(host_connection(iso.host), iso.pool).volume(volume).delete()
            except hv.NotFound:
                pass
