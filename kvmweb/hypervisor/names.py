"""Validation of names before they reach libvirt."""
from __future__ import annotations

import re

from .errors import InvalidRequest

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
NAME_RULE = "1–64 characters: letters, digits, '.', '_' and '-', starting with a letter or digit"


def validate_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` if libvirt and a file system can take it safely, else raise InvalidRequest."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidRequest(f"Invalid {what} {name!r}: use {NAME_RULE}.")
    if name in (".", "..") or name.endswith("."):
        raise InvalidRequest(f"Invalid {what} {name!r}: it may not end with '.'.")
    return name
