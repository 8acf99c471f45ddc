from __future__ import annotations

from django import template

from kvmweb import hypervisor as hv

register = template.Library()


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
