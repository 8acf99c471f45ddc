"""Writing the audit log (append-only, see ``models``): one row per change, ok or failed with the error's words."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from .models import AuditEntry


def audit_record(
    *, actor: AbstractBaseUser | AnonymousUser | None, action: str, target_type: str, target: str,
    host: str = "", ok: bool = True, detail: str = "", target_id: str = "",
) -> AuditEntry:
    """Write one entry. ``target_id``: the object's identifier for filtering (a VM's UUID); for VMs it is taken
    from the end of ``target`` ("name uuid") when not given."""
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    if not target_id and target_type == "vm":
        target_id = target.rsplit(" ", 1)[-1] if _looks_like_uuid(target.rsplit(" ", 1)[-1]) else ""
    return AuditEntry.objects.create(
        actor=user, actor_name=user.get_username() if user is not None else "", action=action,
        target_type=target_type, target=target[:200], target_id=target_id.lower()[:64], host=host[:200], ok=ok,
        detail=detail,
    )


def _looks_like_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(c in "0123456789abcdefABCDEF" for c in "".join(parts))


@contextlib.contextmanager
def audited(
    *, actor: AbstractBaseUser | AnonymousUser | None, action: str, target_type: str, target: str, host: str = "",
    target_id: str = "",
) -> Iterator[list[str]]:
    """Record the outcome of the block: ok, or failed with the error's words. Yields a list for extra detail."""
    notes: list[str] = []
    try:
        yield notes
    except Exception as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        audit_record(actor=actor, action=action, target_type=target_type, target=target, host=host, ok=False,
                     detail=str(detail), target_id=target_id)
        raise
    audit_record(actor=actor, action=action, target_type=target_type, target=target, host=host, ok=True,
                 detail="; ".join(notes), target_id=target_id)
