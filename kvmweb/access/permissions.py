"""Who may do what: the one place the portal's access rules live.

Pages, the API, the events socket, the console proxy and Celery-started work all ask here. The rules:

- **Staff** (an active ``is_staff`` account) see and do everything.
- **A VM** belongs to its owner, who may see it and do everything with it. Anyone else gets a 404 — a VM that is
  not yours looks exactly like one that does not exist. A VM nobody owns (defined outside the portal) is staff's.
- **A job** is seen and cancelled by the person who started it (and staff).
- **Hosts, pools, networks and the ISO library** are managed by staff; users use what staff opened to them (the
  storage, networks and media apps keep those grants and ask :func:`require_staff` for every change).

Checks raise the portal's own errors (:class:`NotFoundError`, :class:`PermissionDeniedError`), which pages and the
API turn into 404/403 in one place. Objects are read by their fields (``vm.owner_id``, ``job.actor_id``): this module
imports no app's models, so every app can use it.
"""
from __future__ import annotations

import enum
from typing import Any, Protocol, TypeAlias

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q

from kvmweb.core.errors import NotFoundError, PermissionDeniedError

Actor: TypeAlias = AbstractBaseUser | AnonymousUser


class OwnedVm(Protocol):
    owner_id: int | None


class Started(Protocol):
    actor_id: int | None


class VmAction(enum.Enum):
    """What someone wants to do with a VM, from the least to the most trusted."""

    VIEW = "view"  # see it, its state, disks, NICs, screenshot
    OPERATE = "operate"  # power actions, console input, CD-ROM media
    MANAGE = "manage"  # disks, NICs, boot order, clone
    DELETE = "delete"  # delete it


def is_authenticated(actor: Actor | None) -> bool:
    return bool(actor is not None and getattr(actor, "is_authenticated", False) and getattr(actor, "is_active", True))


def is_staff(actor: Actor | None) -> bool:
    return is_authenticated(actor) and bool(getattr(actor, "is_staff", False))


def actor_id(actor: Actor | None) -> int | None:
    return getattr(actor, "pk", None) if is_authenticated(actor) else None


def require_login(actor: Actor | None) -> None:
    if not is_authenticated(actor):
        raise PermissionDeniedError("Log in first.")


def require_staff(actor: Actor | None, what: str) -> None:
    """403 unless ``actor`` is staff; ``what`` completes "Only staff ..." ("manage storage pools")."""
    require_login(actor)
    if not is_staff(actor):
        raise PermissionDeniedError(f"Only staff {what}.")


# ------------------------------------------------------------------------------------------------ VMs
def vm_may(actor: Actor | None, vm: OwnedVm, action: VmAction = VmAction.VIEW) -> bool:
    """Whether ``actor`` may do ``action`` with ``vm``: staff, or its owner."""
    if is_staff(actor):
        return True
    me = actor_id(actor)
    return me is not None and vm.owner_id == me


def require_vm(actor: Actor | None, vm: OwnedVm, action: VmAction = VmAction.VIEW) -> None:
    """404 for a VM ``actor`` may not see (indistinguishable from a missing one), 403 for an action beyond what
    they may do with a VM they see."""
    if not vm_may(actor, vm, VmAction.VIEW):
        raise NotFoundError("No such virtual machine.")
    if not vm_may(actor, vm, action):
        raise PermissionDeniedError(f"You may not {action.value} this virtual machine.")


def vm_visible_q(actor: Actor | None, *, owner_field: str = "owner") -> Q:
    """A filter for the VM records ``actor`` may see (``owner_field``: the path to the owner from the queried
    model)."""
    if is_staff(actor):
        return Q()
    me = actor_id(actor)
    if me is None:
        return Q(pk__in=[])
    return Q(**{f"{owner_field}_id": me})


def vm_may_see_unowned(actor: Actor | None) -> bool:
    """VMs defined outside the portal (no owner yet) are staff's."""
    return is_staff(actor)


def may_create_for(actor: Actor | None, owner: Any) -> bool:
    """Whether ``actor`` may make something owned by ``owner`` (themselves; staff for anyone)."""
    return owner is None or is_staff(actor) or getattr(owner, "pk", None) == actor_id(actor)


# ------------------------------------------------------------------------------------------------ jobs
def job_may_view(actor: Actor | None, job: Started) -> bool:
    return is_staff(actor) or (actor_id(actor) is not None and job.actor_id == actor_id(actor))


def jobs_visible_q(actor: Actor | None) -> Q:
    if is_staff(actor):
        return Q()
    me = actor_id(actor)
    return Q(actor_id=me) if me is not None else Q(pk__in=[])


def require_job(actor: Actor | None, job: Started) -> None:
    if not job_may_view(actor, job):
        raise NotFoundError("No such job.")


# ------------------------------------------------------------------------------------------------ events
def event_groups(actor: Actor | None) -> list[str]:
    """The live-event groups a browser of ``actor`` joins: staff see everything through one group; everyone else
    only their own."""
    if is_staff(actor):
        return [STAFF_GROUP]
    me = actor_id(actor)
    return [user_group(me)] if me is not None else []


STAFF_GROUP = "staff"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"
