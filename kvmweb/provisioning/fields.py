"""Form values as the provisioning services read them: whole numbers, sizes, flags, short texts and names.

Each reader records a problem in the given FieldErrors (under the field's name) and returns None or a harmless
value, so a service can check every field before it raises."""
from __future__ import annotations

from kvmweb import hypervisor as hv
from kvmweb.core.errors import FieldErrors


def int_field(value: object, name: str, errors: FieldErrors) -> int | None:
    if isinstance(value, bool):
        errors.add(name, "must be a whole number")
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        errors.add(name, "must be a whole number")
        return None


def size_field(value: object, name: str, unit: str, errors: FieldErrors) -> int | None:
    """'2048' (a bare number is in ``unit``), '2G', '512M' → bytes."""
    text = str(value if value is not None else "").strip()
    if isinstance(value, bool) or text.startswith(("-", "+")):
        errors.add(name, f"{text[:20]!r}: give a size above zero, without a sign")
        return None
    try:
        return hv.parse_size(text, field=name, default_unit=unit).amount
    except hv.InvalidRequest:
        errors.add(name, f"{text[:20]!r} is not a size above zero: a number with an optional unit (M, G, T; a "
                         f"bare number means {unit}iB)")
        return None


def flag_field(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def text_field(value: object, name: str, limit: int, errors: FieldErrors) -> str:
    given = str(value or "").strip() if isinstance(value, str | int) or value is None else ""
    if len(given) > limit:
        errors.add(name, f"at most {limit} characters")
    return given


def name_field(value: object, errors: FieldErrors, field: str = "name") -> str:
    given = text_field(value, field, 64, errors)
    try:
        hv.validate_name(given)
    except hv.InvalidRequest:
        errors.add(field, hv.NAME_RULE)
    return given
