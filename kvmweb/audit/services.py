from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from .models import AuditEntry


def audit_record(
    *, actor: AbstractBaseUser | AnonymousUser | None, action: str, target_type: str, target: str,
    host: str = "", ok: bool = True, detail: str = "",
) -> AuditEntry:
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user, action=action, target_type=target_type, target=target[:200], host=host[:200], ok=ok,
        detail=detail,
    )


@contextlib.contextmanager
def audited(
    *, actor: AbstractBaseUser | AnonymousUser | None, action: str, target_type: str, target: str, host: str = "",
) -> Iterator[list[str]]:
    """Record the outcome of the block: ok, or failed with the error's words. Yields a list for extra detail."""
    notes: list[str] = []
    try:
        yield notes
    except Exception as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        audit_record(actor=actor, action=action, target_type=target_type, target=target, host=host, ok=False,
                     detail=str(detail))
        raise
    audit_record(actor=actor, action=action, target_type=target_type, target=target, host=host, ok=True,
                 detail="; ".join(notes))
