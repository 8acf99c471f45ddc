from __future__ import annotations

import functools

from django import template
from django.urls import get_script_prefix, reverse

from kvmweb import hypervisor as hv

register = template.Library()

_UUID_SLOT = "00000000-0000-0000-0000-000000000000"


@functools.lru_cache(maxsize=64)
def _uuid_path(name: str, prefix: str) -> str:
    return reverse(name, kwargs={"uuid": _UUID_SLOT})


@register.simple_tag
def uuid_url(name: str, uuid: str) -> str:
    """``{% url name uuid=uuid %}`` for lists of many rows: each URL name is reversed once (per script prefix) and the
    row's UUID put in its place, instead of resolving the URL again for every row."""
    return _uuid_path(name, get_script_prefix()).replace(_UUID_SLOT, str(uuid), 1)


@register.filter(name="bytes")
def bytes_filter(value: int | None) -> str:
    """2147483648 → '2 GiB' (the portal's one size format)."""
    return "—" if value is None else hv.human(int(value))


@register.filter
def kib(value: int | None) -> str:
    """2097152 → '2 GiB', 524288 → '512 MiB' (libvirt counts memory in KiB)."""
    return "—" if value is None else hv.human(int(value) * 1024)


@register.filter
def cpu_seconds(value: int | None) -> str:
    """CPU time in nanoseconds → '12.3s' (virsh dominfo's format)."""
    if value is None:
        return "—"
    return f"{value / 1e9:.1f}s"


@register.filter
def yesno_virsh(value: bool) -> str:
    return "yes" if value else "no"
