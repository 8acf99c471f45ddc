"""Sizes, in one place: libvirt's XML units, sizes as people type them, and sizes as people read them.

libvirt's XML says ``unit='KiB'``, ``'MB'``, ``'G'``...: a bare prefix and the ``…iB`` spelling are binary, the
``…B`` spelling is decimal (libvirt's own rule). People type sizes for ``qemu-img create``/``resize``: "20G",
"512M", "1.5T", "+10G" (grow by); there every spelling is binary, like qemu-img's. Both tables come from the one
list of prefixes below.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from .errors import InvalidRequest

PREFIXES = "kmgtpe"  # kilo, mega, giga, tera, peta, exa: 1024**1 ... 1024**6
KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4
SECTOR = 512
MAX_BYTES = 2**63 - 1

# libvirt's unit names (lower-cased) → bytes: 'k'/'kib' = 1024, 'kb' = 1000, and so on up.
XML_UNITS: dict[str, int] = {"b": 1, "bytes": 1}
for _power, _prefix in enumerate(PREFIXES, start=1):
    XML_UNITS[_prefix] = XML_UNITS[f"{_prefix}ib"] = 1024**_power
    XML_UNITS[f"{_prefix}b"] = 1000**_power


def xml_to_bytes(text: str | None, unit: str | None, *, default_unit: str = "bytes") -> int:
    """The number of bytes an XML size element holds (``<capacity unit='G'>2</capacity>`` → 2 GiB).

    An empty element is 0; an unknown unit raises InvalidRequest."""
    value = (text or "").strip()
    if not value:
        return 0
    factor = XML_UNITS.get((unit or default_unit).lower())
    if factor is None:
        raise InvalidRequest(f"Unknown size unit {unit!r} in the XML.")
    return int(value) * factor


def xml_element_bytes(element: Any, *, default_unit: str = "bytes") -> int:
    """:func:`xml_to_bytes` of an ElementTree/lxml element (None: 0)."""
    if element is None:
        return 0
    return xml_to_bytes(element.text, element.get("unit"), default_unit=default_unit)


def human(num: int) -> str:
    """2147483648 → '2 GiB', 1610612736 → '1.5 GiB': binary units (qemu-img info's style), two decimals at most,
    trailing zeros dropped. The one way the portal writes a size."""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.2f}".rstrip("0").rstrip(".") + f" {unit}"
        value /= 1024
    return f"{num} B"  # pragma: no cover


# -- sizes as people type them ---------------------------------------------------------------------------------
_SIZE_RE = re.compile(rf"^(?P<sign>[+-]?)(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[{PREFIXES}]?)(?:i?b)?$", re.IGNORECASE)
SIZE_HELP = 'a number with an optional unit K, M, G, T (binary, like qemu-img): "20G", "512M", "1.5T"'


class SizeInvalid(InvalidRequest):
    """A size nobody can use; ``fields`` names the form field it came from."""

    code = "invalid"


@dataclass(frozen=True)
class SizeRequest:
    amount: int  # bytes
    relative: bool  # "+10G": grow by amount; else the new absolute size

    def target(self, current: int) -> int:
        return current + self.amount if self.relative else self.amount


def parse_size(text: str, *, allow_relative: bool = False, field: str = "size",
               default_unit: str = "") -> SizeRequest:
    """Parse a size as a person typed it; SizeInvalid (with the field) for "-5G", "10X", "0", "", "1e9"...

    ``default_unit`` ('M', 'G'...) applies to a bare number. Sizes round up to whole 512-byte sectors, as qemu-img
    does."""
    raw = str(text or "").strip()
    if not raw:
        raise SizeInvalid(f"Give a {field}: {SIZE_HELP}.", fields={field: ["required"]})
    if default_unit and raw.replace(".", "", 1).isdigit():
        raw += default_unit
    match = _SIZE_RE.fullmatch(raw)
    if match is None:
        raise SizeInvalid(f"{raw[:40]!r} is not a size: use {SIZE_HELP}.", fields={field: ["not a size"]})
    if match["sign"] == "-":
        raise SizeInvalid(
            f"{raw!r} would shrink the disk. Shrinking is refused: it cuts off the end of the disk and destroys "
            "whatever data lives there.", fields={field: ["shrinking is refused"]},
        )
    if match["sign"] == "+" and not allow_relative:
        raise SizeInvalid(f"Give an absolute {field} here (no '+').", fields={field: ["absolute size"]})
    unit = match["unit"].lower()
    try:
        amount = Decimal(match["num"]) * (XML_UNITS[unit] if unit else 1)
    except InvalidOperation:  # pragma: no cover - the regex only lets digits through
        raise SizeInvalid(f"{raw!r} is not a size.", fields={field: ["not a size"]}) from None
    whole = int(amount.to_integral_value(rounding=ROUND_CEILING))
    rounded = (whole + SECTOR - 1) // SECTOR * SECTOR
    if rounded <= 0:
        raise SizeInvalid(f"{raw!r} is zero: a disk needs a size above zero.", fields={field: ["zero"]})
    if rounded > MAX_BYTES:
        raise SizeInvalid(f"{raw!r} is larger than any disk can be.", fields={field: ["too large"]})
    return SizeRequest(amount=rounded, relative=match["sign"] == "+")
