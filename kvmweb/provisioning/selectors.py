"""Reads of flavors and templates. Every logged-in person sees every flavor; templates: staff see all, a user the
public ones and their own private ones."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, actor_id, is_authenticated, is_staff, vm_names, vm_uuids_visible
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.media.models import IsoImage

from .models import Flavor, Template


def _key(pk: object) -> int | None:
    if isinstance(pk, bool):
        return None
    try:
        return int(str(pk))
    except (TypeError, ValueError):
        return None


def flavor_list() -> QuerySet[Flavor]:
    return Flavor.objects.all()


def flavor_get(pk: int | str) -> Flavor:
    key = _key(pk)
    flavor = Flavor.objects.filter(pk=key).first() if key is not None else None
    if flavor is None:
        raise NotFoundError("No such flavor.")
    return flavor


def template_queryset(actor: Actor) -> QuerySet[Template]:
    templates = Template.objects.select_related("image", "image__host", "flavor", "owner")
    if not is_authenticated(actor):
        return templates.none()
    if is_staff(actor):
        return templates
    return templates.filter(Q(public=True) | Q(owner_id=actor_id(actor)))


def template_list(*, actor: Actor, host: Host | None = None) -> QuerySet[Template]:
    """The templates open to ``actor`` (on ``host``: the host of their image)."""
    templates = template_queryset(actor)
    return templates.filter(image__host=host) if host is not None else templates


def template_get(*, actor: Actor, pk: int | str) -> Template:
    """One template open to ``actor``; NotFoundError for one they may not see, as for one that does not exist.
    Its image may still be being made (``template.image.complete`` False): callers that start VMs check that."""
    key = _key(pk)
    template = template_queryset(actor).filter(pk=key).first() if key is not None else None
    if template is None:
        raise NotFoundError("No such template.")
    return template


def image_in_use(image: IsoImage, *, actor: Actor) -> str:
    """What on the image's host uses it, in words ('' when nothing): the domains that have it as a disk (named
    when ``actor`` may see them) and the volumes that sit on it as their backing file (linked clones). One bulk
    disk listing, one volume listing per active pool."""
    conn = host_connection(image.host)
    names = vm_names(((u.domain_uuid, u.domain_name) for u in hv.domain_disk_users(conn).get(image.path, [])),
                     vm_uuids_visible(actor, host_id=image.host_id))
    overlays = 0
    for pool in hv.pool_list(conn):
        if not pool.active:
            continue
        try:
            volumes = hv.pool_lookup(conn, pool.name).volumes()
        except hv.PoolNotFound:
            continue  # undefined since the listing
        overlays += sum(1 for v in volumes if v.backing_path == image.path)
    said = [str(names)] if names else []
    if overlays:
        said.append(f"{overlays} disk{'s' if overlays != 1 else ''} linked to it")
    return " and ".join(said)
