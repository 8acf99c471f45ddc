"""Who may do what: the one place the portal's access rules live.

Pages, the API, the events socket, the console proxy and Celery-started work all ask here. The rules:

- **Staff** (an active ``is_staff`` account) see and do everything.
- **A VM** belongs to its owner, who may see it and do everything with it. Anyone else gets a 404 — a VM that is
  not yours looks exactly like one that does not exist. A VM nobody owns (defined outside the portal) is staff's.
- **Sharing**: the owner (or staff) shares a VM with a user or a Django group with a role (:class:`VmRole`):

  ============  ==========================================================================================
  viewer        see it: state, disks, NICs, screenshots, activity; the console view-only
  operator      + power actions (start, shut down, reboot, force off, autostart), console input, CD-ROM media
  manager       + disks, NICs, boot order, bus, clone
  owner, staff  + delete, share
  ============  ==========================================================================================

  A user's role on a VM is the highest of: owner, staff, their direct share, the shares of their groups. Someone
  with no role gets a 404 for the VM; someone whose role is too low for an action gets a 403.
- **A job** is seen and cancelled by the person who started it (and staff).
- **Hosts, pools, networks and the ISO library** are managed by staff; users use what staff opened to them (the
  storage, networks and media apps keep those grants and ask :func:`require_staff` for every change).

Checks raise the portal's own errors (:class:`NotFoundError`, :class:`PermissionDeniedError`), which pages and the
API turn into 404/403 in one place. Objects are read by their fields (``vm.owner_id``, ``job.actor_id``): this module
imports no app's models, so every app can use it.

**Where shares come from.** VM records and their shares (``VmShare``) live in the machines app, above this module.
That app registers a :class:`VmRecords` provider in its ``AppConfig.ready`` with :func:`vm_records_provider` (the
pattern of ``accounts.selectors.usage_provider``): ``role(user_id, vm)`` answers the highest shared role of a user
on one VM (one query), ``shared_ids(user_id)`` a lazy queryset of the pks of the VMs shared with them (a subquery of
:func:`vm_visible_q`), ``visible_uuids`` the UUIDs a user may see (for lists that name VMs: the ISO library,
networks, storage). Without a provider nothing is shared. Callers that already know the role (a list row) pass it to
:func:`role_may` instead of asking again.

**Who hears of a VM** (the events socket): the VM's audience — its owner, the users it is shared with directly and
the members of the groups it is shared with (one query, ``machines.selectors.vm_audience``) — plus staff.

**Celery-started work** checks again when it runs: the job's actor must still have the role the work needs
(:func:`require_vm` on a fresh read), so a share removed after the job was queued fails the job, undoing nothing.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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
    SHARE = "share"  # share it with others, change or remove their roles


class VmRole(enum.IntEnum):
    """Someone's role on a VM, from none to staff; a higher role may everything a lower one may."""

    NONE = 0
    VIEWER = 1
    OPERATOR = 2
    MANAGER = 3
    OWNER = 4
    STAFF = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def shared(cls, name: str | None) -> VmRole:
        """The role a share's name gives (``"viewer"``...); an unknown or empty one gives none."""
        return _SHARE_ROLES.get(name or "", cls.NONE)


SHARE_ROLES: tuple[str, ...] = ("viewer", "operator", "manager")  # the roles a share can give, lowest first
_SHARE_ROLES = {"viewer": VmRole.VIEWER, "operator": VmRole.OPERATOR, "manager": VmRole.MANAGER}

NEEDS: dict[VmAction, VmRole] = {  # the least role each action needs
    VmAction.VIEW: VmRole.VIEWER,
    VmAction.OPERATE: VmRole.OPERATOR,
    VmAction.MANAGE: VmRole.MANAGER,
    VmAction.DELETE: VmRole.OWNER,
    VmAction.SHARE: VmRole.OWNER,
}


class VmRecords(Protocol):
    """What the app that keeps the VM records and their shares tells this module (registered with
    :func:`vm_records_provider`)."""

    def role(self, user_id: int, vm: Any) -> str | None:
        """The highest role ``user_id`` was given on ``vm``, directly or through a group (None: not shared)."""

    def shared_ids(self, user_id: int) -> Any:
        """The pks of the VMs shared with ``user_id`` (a lazy queryset, used as a subquery)."""

    def visible_uuids(self, user_id: int, host_id: int | None) -> set[str]:
        """The UUIDs of the VMs ``user_id`` owns or was given a role on (on host ``host_id``): one query."""


_records: VmRecords | None = None


def vm_records_provider(provider: VmRecords) -> VmRecords:
    """Register where VM records and shares come from (the machines app does, in its ``AppConfig.ready``)."""
    global _records
    _records = provider
    return provider


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
def vm_role(actor: Actor | None, vm: OwnedVm) -> VmRole:
    """``actor``'s role on ``vm``: owner, staff, else the highest share (one query through the provider)."""
    me = actor_id(actor)
    if me is None:
        return VmRole.NONE
    if vm.owner_id == me:
        return VmRole.OWNER
    if is_staff(actor):
        return VmRole.STAFF
    if _records is None or getattr(vm, "pk", None) is None:
        return VmRole.NONE
    return VmRole.shared(_records.role(me, vm))


def role_may(role: VmRole, action: VmAction = VmAction.VIEW) -> bool:
    """Whether ``role`` allows ``action`` (for callers that read the role already, such as a list's rows)."""
    return role >= NEEDS[action]


def role_abilities(role: VmRole) -> dict[str, Any]:
    """What ``role`` may do, by action (``{"view": True, "operate": False, ...}``) plus its ``"role"`` name: for
    pages, which show only the actions the reader may use (the services refuse the others anyway)."""
    return {**{action.value: role_may(role, action) for action in VmAction}, "role": role.label}


def role_check(role: VmRole, action: VmAction = VmAction.VIEW) -> None:
    """404 for no role (the VM looks missing), 403 for a role too low for ``action``."""
    if role == VmRole.NONE:
        raise NotFoundError("No such virtual machine.")
    if not role_may(role, action):
        raise PermissionDeniedError(
            f"You may not {action.value} this virtual machine: your role on it is {role.label}.")


def vm_may(actor: Actor | None, vm: OwnedVm, action: VmAction = VmAction.VIEW) -> bool:
    """Whether ``actor`` may do ``action`` with ``vm`` (see the roles above)."""
    return role_may(vm_role(actor, vm), action)


def require_vm(actor: Actor | None, vm: OwnedVm, action: VmAction = VmAction.VIEW) -> VmRole:
    """404 for a VM ``actor`` may not see (indistinguishable from a missing one), 403 for an action beyond what
    their role allows; returns the role."""
    role = vm_role(actor, vm)
    role_check(role, action)
    return role


def require_migrate(actor: Actor | None, vm: OwnedVm, *, by_owners: bool) -> VmRole:
    """Moving a VM to another host: staff; its owner and managers too where the site allows it (``by_owners``:
    ``settings.KVMWEB_MIGRATION_BY_OWNERS``). 404 for a VM ``actor`` may not see, 403 for a role too low."""
    role = require_vm(actor, vm, VmAction.VIEW)
    if role == VmRole.STAFF or (by_owners and role >= VmRole.MANAGER):
        return role
    raise PermissionDeniedError("Only staff move virtual machines to another host."
                                + (" Its owner and managers may too." if by_owners else ""))


def backup_role(actor: Actor | None, *, vm: OwnedVm | None, owner_id: int | None) -> VmRole:
    """``actor``'s role on a backup: their role on its VM while the VM exists; once it is gone, the owner the backup
    names (``OWNER``) and staff (``STAFF``), nobody else."""
    if vm is not None:
        return vm_role(actor, vm)
    me = actor_id(actor)
    if me is None:
        return VmRole.NONE
    if is_staff(actor):
        return VmRole.STAFF
    return VmRole.OWNER if owner_id is not None and owner_id == me else VmRole.NONE


def vm_visible_q(actor: Actor | None, *, vm_field: str = "") -> Q:
    """A filter for the records ``actor`` may see VMs of: owned, or shared with them or one of their groups
    (``vm_field``: the path to the VM record from the queried model, ``""`` for the VM records themselves)."""
    if is_staff(actor):
        return Q()
    me = actor_id(actor)
    if me is None:
        return Q(pk__in=[])
    prefix = f"{vm_field}__" if vm_field else ""
    visible = Q(**{f"{prefix}owner_id": me})
    if _records is not None:
        visible |= Q(**{f"{prefix}pk__in": _records.shared_ids(me)})
    return visible


def vm_uuids_visible(actor: Actor | None, *, host_id: int | None = None) -> set[str] | None:
    """The UUIDs of the VMs ``actor`` may see (on host ``host_id``): None for staff, who see every VM (also those
    nobody owns). Every list that names VMs keeps only these (see :func:`vm_names`)."""
    if is_staff(actor):
        return None
    me = actor_id(actor)
    if me is None or _records is None:
        return set()
    return _records.visible_uuids(me, host_id)


@dataclass(frozen=True)
class VmNames:
    """The names of VMs a list may show its reader, and how many others it does not name."""

    names: tuple[str, ...]
    hidden: int = 0

    def __str__(self) -> str:
        others = [f"{self.hidden} VM{'s' if self.hidden != 1 else ''} of other users"] if self.hidden else []
        return ", ".join([*self.names, *others])

    def __bool__(self) -> bool:
        return bool(self.names or self.hidden)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)


def vm_names(uses: Iterable[tuple[str, str]], visible: set[str] | None) -> VmNames:
    """(uuid, name) pairs of VMs → the names ``visible`` (from :func:`vm_uuids_visible`) lets the reader see, and
    how many others there are."""
    pairs = dict(uses)
    shown = sorted({name for uuid, name in pairs.items() if visible is None or uuid in visible})
    return VmNames(tuple(shown), sum(1 for uuid in pairs if visible is not None and uuid not in visible))



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
