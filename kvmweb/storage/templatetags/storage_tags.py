from __future__ import annotations

from django import template

from kvmweb.storage.sizes import human

register = template.Library()


@register.filter(name="bytes")
def bytes_filter(value: int | None) -> str:
    """2147483648 → '2 GiB'."""
    return "—" if value is None else human(int(value))
