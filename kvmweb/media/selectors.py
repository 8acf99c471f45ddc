"""Reads of the ISO library: every logged-in user may see complete media; unfinished uploads only their uploader
and staff."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from kvmweb import hypervisor as hv
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.access.permissions import Actor, VmNames, is_authenticated, is_staff, vm_names, vm_uuids_visible

from .models import IsoImage



def iso_queryset(actor: Actor) -> QuerySet[IsoImage]:
    isos = IsoImage.objects.select_related("host", "added_by").filter(kind=IsoImage.Kind.ISO)
    if not is_authenticated(actor):
        return isos.none()
    if is_staff(actor):
        return isos
    return isos.filter(Q(complete=True) | Q(added_by=actor))


def iso_list(*, actor: Actor, host: Host | None = None, complete_only: bool = False) -> QuerySet[IsoImage]:
    isos = iso_queryset(actor)
    if host is not None:
        isos = isos.filter(host=host)
    if complete_only:
        isos = isos.filter(complete=True)
    return isos


def image_queryset(actor: Actor) -> QuerySet[IsoImage]:
    """The image library as ``actor`` sees it: staff everything; a user complete public images and their own."""
    images = IsoImage.objects.select_related("host", "added_by").filter(kind=IsoImage.Kind.IMAGE)
    if not is_authenticated(actor):
        return images.none()
    if is_staff(actor):
        return images
    return images.filter(Q(complete=True, public=True) | Q(added_by=actor))


def image_get(*, actor: Actor, pk: int | str) -> IsoImage:
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise NotFoundError("No such disk image.") from None
    image = image_queryset(actor).filter(pk=key).first()
    if image is None:
        raise NotFoundError("No such disk image.")
    return image


def iso_get(*, actor: Actor, pk: int | str) -> IsoImage:
    try:
        key = int(pk)
    except (TypeError, ValueError):
        raise NotFoundError("No such install medium.") from None
    iso = iso_queryset(actor).filter(pk=key).first()
    if iso is None:
        raise NotFoundError("No such install medium.")
    return iso


def iso_users(host: Host, *, actor: Actor) -> dict[str, VmNames]:
    """path → the domains that have it in a drive (one listing of the host's domain disks, one query): named when
    ``actor`` may see them, counted otherwise."""
    try:
        users = hv.domain_disk_users(host_connection(host))
    except hv.HypervisorError:
        return {}
    visible = vm_uuids_visible(actor, host_id=host.pk)
    return {path: vm_names(((u.domain_uuid, u.domain_name) for u in uses), visible) for path, uses in users.items()}
