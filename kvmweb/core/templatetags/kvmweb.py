from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def kib(value: int | None) -> str:
    """2097152 → '2 GiB', 524288 → '512 MiB' (libvirt counts memory in KiB)."""
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} KiB"  # pragma: no cover


@register.filter
def cpu_seconds(value: int | None) -> str:
    """CPU time in nanoseconds → '12.3s' (virsh dominfo's format)."""
    if value is None:
        return "—"
    return f"{value / 1e9:.1f}s"


@register.filter
def yesno_virsh(value: bool) -> str:
    return "yes" if value else "no"
