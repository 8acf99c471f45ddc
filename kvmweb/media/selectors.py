"""Reads of the media library, both kinds. Install media (the ISO library): every logged-in user may see complete
media; unfinished uploads only their uploader and staff. Disk images (the image library): staff see all; a user
sees the complete images that are public and the ones they added."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from kvmweb import hypervisor as hv
from kvmweb.core.errors import NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.access.permissions import Actor, VmNames, is_authenticated, is_staff, vm_names, vm_uuids_visible

from .models import IsoImage

ISO, IMAGE = IsoImage.Kind.ISO, IsoImage.Kind.IMAGE


def _visible(actor: Actor, kind: str, shared: Q) -> QuerySet[IsoImage]:
    """The rows of ``kind`` ``actor`` may see: all for staff; for a user the ``shared`` ones and their own."""
    rows = IsoImage.objects.select_related("host", "added_by").filter(kind=kind)
    if not is_authenticated(actor):
        return rows.none()
    return rows if is_staff(actor) else rows.filter(shared | Q(added_by=actor))


def iso_queryset(actor: Actor) -> QuerySet[IsoImage]:
    return _visible(actor, ISO, Q(complete=True))


def image_queryset(actor: Actor) -> QuerySet[IsoImage]:
    return _visible(actor, IMAGE, Q(complete=True, public=True))


def _narrowed(rows: QuerySet[IsoImage], host: Host | None, complete_only: bool) -> QuerySet[IsoImage]:
    if host is not None:
        rows = rows.filter(host=host)
    return rows.filter(complete=True) if complete_only else rows


def _one(rows: QuerySet[IsoImage], pk: int | str, missing: str) -> IsoImage:
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise NotFoundError(missing) from None
    row = rows.filter(pk=key).first()
    if row is None:
        raise NotFoundError(missing)
    return row


def iso_list(*, actor: Actor, host: Host | None = None, complete_only: bool = False) -> QuerySet[IsoImage]:
    return _narrowed(iso_queryset(actor), host, complete_only)


def iso_get(*, actor: Actor, pk: int | str) -> IsoImage:
    return _one(iso_queryset(actor), pk, "No such install medium.")


def image_list(*, actor: Actor, host: Host | None = None, complete_only: bool = False) -> QuerySet[IsoImage]:
    """The disk images ``actor`` may see (``complete_only``: the ones a new VM may start from)."""
    return _narrowed(image_queryset(actor), host, complete_only)


def image_get(*, actor: Actor, pk: int | str) -> IsoImage:
    return _one(image_queryset(actor), pk, "No such disk image.")


def image_usable(*, actor: Actor, host: Host, pk: int | str | None, field: str = "image") -> IsoImage:
    """The complete disk image ``pk`` that ``actor`` may start a VM from on ``host``, else a 400 on ``field``
    (what a provisioning service asks before it makes anything)."""
    image = _narrowed(image_queryset(actor), host, True).filter(pk=pk).first() if str(pk or "").isdigit() else None
    if image is None:
        raise ValidationError(f"No disk image {pk} you may use on {host}.", fields={field: ["no such image"]})
    return image


def iso_users(host: Host, *, actor: Actor) -> dict[str, VmNames]:
    """path → the domains that have it in a drive (one listing of the host's domain disks, one query): named when
    ``actor`` may see them, counted otherwise."""
    try:
        users = hv.domain_disk_users(host_connection(host))
    except hv.HypervisorError:
        return {}
    visible = vm_uuids_visible(actor, host_id=host.pk)
    return {path: vm_names(((u.domain_uuid, u.domain_name) for u in uses), visible) for path, uses in users.items()}


@dataclass(frozen=True)
class ImageUsers:
    """Who uses a disk image: the VMs with it (or a disk that sits on it) in a drive, and the volumes that sit on it
    (overlays: linked clones, a VM's disk made from the image)."""

    vms: VmNames
    volumes: tuple[str, ...]  # their paths (staff), else empty
    hidden_volumes: int = 0

    def __str__(self) -> str:
        count = len(self.volumes) + self.hidden_volumes
        overlays = [f"the backing file of {count} volume{'s' if count != 1 else ''}"] if count else []
        return "; ".join([*([str(self.vms)] if self.vms else []), *overlays])

    def __bool__(self) -> bool:
        return bool(self.vms or self.volumes or self.hidden_volumes)


def image_users(host: Host, *, actor: Actor, paths: Iterable[str]) -> dict[str, ImageUsers]:
    """path (of ``paths``) → who uses it, from one listing of the host's domain disks and one of its pools' volumes;
    overlays of overlays count too. Empty when the host does not answer."""
    try:
        conn = host_connection(host)
        disks = hv.domain_disk_users(conn)
        backing = hv.volume_backing_users(conn)
    except hv.HypervisorError:
        return {}
    visible = vm_uuids_visible(actor, host_id=host.pk)
    result = {}
    for path in paths:
        chain, todo = [path], [path]
        while todo:  # every volume whose backing chain reaches the image
            for row in backing.get(todo.pop(), []):
                if row.path not in chain:
                    chain.append(row.path)
                    todo.append(row.path)
        uses = [(u.domain_uuid, u.domain_name) for p in chain for u in disks.get(p, [])]
        overlays = tuple(chain[1:])
        users = ImageUsers(vm_names(uses, visible), overlays if is_staff(actor) else (),
                           0 if is_staff(actor) else len(overlays))
        if users:
            result[path] = users
    return result
