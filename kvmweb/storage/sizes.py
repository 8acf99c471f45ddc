"""Sizes as people type them for ``qemu-img create``/``resize``: "20G", "512M", "1.5T", "+10G" (grow by).

Units are binary like qemu-img's (K = KiB, G = GiB); "GiB"/"GB" spellings are accepted and also binary.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from kvmweb.core.errors import ValidationError

SECTOR = 512
MAX_BYTES = 2**63 - 1
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_SIZE_RE = re.compile(r"^(?P<sign>[+-]?)(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]?)(?:i?b)?$", re.IGNORECASE)
SIZE_HELP = 'a number with an optional unit K, M, G, T (binary, like qemu-img): "20G", "512M", "1.5T"'


@dataclass(frozen=True)
class SizeRequest:
    amount: int  # bytes
    relative: bool  # "+10G": grow by amount; else the new absolute size

    def target(self, current: int) -> int:
        return current + self.amount if self.relative else self.amount


def human(num: int) -> str:
    """2147483648 → '2 GiB' (qemu-img info's style)."""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.2f} {unit}".replace(".00 ", " ")
        value /= 1024
    return f"{num} B"  # pragma: no cover


def parse_size(text: str, *, allow_relative: bool = False, field: str = "size") -> SizeRequest:
    """Parse a size; a clear ValidationError for anything else ("-5G", "10X", "0", "", "1e9"...).

    Sizes round up to whole 512-byte sectors, as qemu-img does.
    """
    raw = (text or "").strip()
    if not raw:
        raise ValidationError(f"Give a {field}: {SIZE_HELP}.", fields={field: ["required"]})
    match = _SIZE_RE.fullmatch(raw)
    if match is None:
        raise ValidationError(f"{raw!r} is not a size: use {SIZE_HELP}.", fields={field: ["not a size"]})
    if match["sign"] == "-":
        raise ValidationError(
            f"{raw!r} would shrink the disk. Shrinking is refused: it cuts off the end of the disk and destroys "
            "whatever data lives there.", fields={field: ["shrinking is refused"]},
        )
    if match["sign"] == "+" and not allow_relative:
        raise ValidationError(f"Give an absolute {field} here (no '+').", fields={field: ["absolute size"]})
    try:
        amount = Decimal(match["num"]) * _UNITS[match["unit"].lower()]
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        raise ValidationError(f"{raw!r} is not a size.", fields={field: ["not a size"]}) from None
    whole = int(amount.to_integral_value(rounding=ROUND_CEILING))
    rounded = (whole + SECTOR - 1) // SECTOR * SECTOR
    if rounded <= 0:
        raise ValidationError(f"{raw!r} is zero: a disk needs a size above zero.", fields={field: ["zero"]})
    if rounded > MAX_BYTES:
        raise ValidationError(f"{raw!r} is larger than any disk can be.", fields={field: ["too large"]})
    return SizeRequest(amount=rounded, relative=match["sign"] == "+")
