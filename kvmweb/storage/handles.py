"""The libvirt handles of the pools (and their volumes) a person may use: for this app's selectors and services and
the services of the apps above it. Pages, the API and websockets never hold one (tests/test_architecture.py)."""
from __future__ import annotations

from django.db.models import Q

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, is_authenticated, is_staff
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection

from .models import PoolAccess


def open_pool_names(actor: Actor, host: Host) -> set[str]:
    """Names of the pools of ``host`` staff opened to ``actor`` (every pool for staff is handled by callers)."""
    if not is_authenticated(actor):
        return set()
    rows = PoolAccess.objects.filter(host=host).filter(Q(everyone=True) | Q(users=actor))
    return set(rows.values_list("pool", flat=True))


def pool_handle(*, actor: Actor, host: Host, name: str) -> hv.Pool:
    """Pool ``name`` of ``host`` if ``actor`` may use it (staff: any pool; users: the pools opened to them);
    NotFoundError otherwise, missing and closed alike."""
    if not is_staff(actor) and name not in open_pool_names(actor, host):
        raise NotFoundError(f"No storage pool {name!r} open to you on {host}.")
    try:
        return hv.pool_lookup(host_connection(host), name)
    except (hv.PoolNotFound, hv.InvalidRequest):
        raise NotFoundError(f"No storage pool {name!r} on {host}.") from None


def volume_handle(*, actor: Actor, host: Host, pool: str, name: str) -> tuple[hv.Pool, hv.Volume]:
    """Volume ``name`` of pool ``pool`` and its pool, if ``actor`` may use the pool (whether they may act on the
    volume itself is ``selectors.volume_get``'s answer: call it first)."""
    handle = pool_handle(actor=actor, host=host, name=pool)
    try:
        return handle, handle.volume(name)
    except (hv.VolumeNotFound, hv.InvalidRequest):
        raise NotFoundError(f"No volume {name!r} in pool {pool}.") from None
