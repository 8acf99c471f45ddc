"""Reads of the usage history and the latest values (plain data, from Redis).

No permission check here: this layer knows no VM records. Callers in higher apps check the actor's role with
``kvmweb.access.permissions`` first and ask only for what that person may see.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from kvmweb.core.errors import ValidationError

from . import store
from .store import HOST_METRICS, METRICS, RANGES, HostLatest, Latest, Series

__all__ = ["HOST_METRICS", "METRICS", "RANGES", "HostLatest", "Latest", "Series", "host_latest", "host_series",
           "latest_for", "vm_series"]


def _tier(range: str) -> str:  # noqa: A002 - the API's word
    if range not in RANGES:
        choices = ", ".join(RANGES)
        raise ValidationError(f"Unknown range {range!r}: choose one of {choices}.", fields={"range": [choices]})
    return range


def vm_series(uuid: str, range: str, *, now: float | None = None) -> Series:  # noqa: A002
    """A VM's history over ``range`` ("1h", "1d", "30d"): every metric of :data:`METRICS` per step, ``None`` for
    gaps. One Redis read. A VM never sampled gives a series of gaps."""
    return store.history_read(store.VM, str(uuid), _tier(range), now=time.time() if now is None else now)


def host_series(host_id: str | int, range: str, *, now: float | None = None) -> Series:  # noqa: A002
    """A host's history over ``range``: :data:`HOST_METRICS` per step."""
    return store.history_read(store.HOST, host_id, _tier(range), now=time.time() if now is None else now)


def latest_for(uuids: Iterable[str]) -> dict[str, Latest]:
    """The latest values of these VMs, by UUID, in one Redis round trip; VMs not running (or whose collector
    stopped more than three intervals ago) are missing from the answer."""
    return store.latest_read(str(u) for u in uuids)


def host_latest(host_id: str | int) -> HostLatest | None:
    """The host's latest CPU %, memory and running-VM count, or ``None`` if no collector sampled it lately."""
    return store.host_latest_read(host_id)
