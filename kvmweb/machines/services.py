"""Every change to a virtual machine: permission check, validation, the libvirt call, an audit row.

Each service returns a result that carries the words the person sees (``result.message``): the page shows them as
a message and the API as ``detail``, so both say the same thing.
"""
from __future__ import annotations

import logging
import uuid as uuid_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import SHARE_ROLES, Actor, VmAction, may_create_for, require_login, require_vm
from kvmweb.audit.services import audited
from kvmweb.events.publish import publish
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ServiceError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.registry import undo_step
from kvmweb.monitoring.services import vm_history_delete

from .handles import vm_handle, vm_moving
from .models import VirtualMachine, VmShare
from .selectors import RecordsDrift, vm_audience, vm_get

log = logging.getLogger(__name__)


def vm_domain(vm: VirtualMachine) -> hv.Domain:
    """The libvirt handle of a record. A domain deleted outside the portal drops its record and is a 404."""
    try:
        return vm_handle(vm)
    except NotFoundError:
        VirtualMachine.objects.filter(pk=vm.pk).delete()
        raise


def vm_checked(actor: Actor, vm: VirtualMachine, action: VmAction) -> hv.Domain:
    """The permission check every VM service starts with, then the VM's handle."""
    require_login(actor)
    require_vm(actor, vm, action)
    return vm_domain(vm)


def vm_recheck(*, actor_id: int | None, uuid: str, action: VmAction, what: str) -> VirtualMachine:
    """Celery-started work asks again when it starts (and before a late step): the job's actor must still have the
    role ``action`` needs on the VM. A share removed or lowered, or an account disabled, since the job was queued
    fails the job here with words saying so, before it does anything (so its undo has nothing to undo).
    ``what`` completes "may no longer ..." ("clone", "force off"). A missing record is a NotFoundError."""
    record: VirtualMachine | None = (VirtualMachine.objects.select_related("host", "owner")
                                     .filter(uuid=uuid_mod.UUID(str(uuid))).first())
    if record is None:
        raise NotFoundError("The virtual machine no longer exists.")
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
    try:
        require_vm(actor, record, action)
    except (NotFoundError, PermissionDeniedError):
        who = actor.get_username() if actor is not None else "The person who started this job"
        raise PermissionDeniedError(
            f"{who} may no longer {what} {record.name}: their access was removed or lowered after the job was "
            "queued, so the job stopped before doing it.", code="access_lost") from None
    return record


def vm_audited(actor: Actor, action: str, vm: VirtualMachine):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="vm", target=f"{vm.name} {vm.uuid}", host=vm.host.uri)


@dataclass(frozen=True)
class VmActionResult:
    message: str
    state: hv.DomainState


def _power(actor: Actor, vm: VirtualMachine, action: str, *, must_run: bool, refusal: str, code: str,
           verb: str, done: str) -> VmActionResult:
    dom = vm_checked(actor, vm, VmAction.OPERATE)
    with vm_audited(actor, action, vm):
        if dom.state().is_active != must_run:
            raise ConflictError(refusal.format(name=vm.name), code=code)
        getattr(dom, verb)()
    return VmActionResult(message=done.format(name=vm.name), state=dom.state())


def vm_start(*, actor: Actor, vm: VirtualMachine) -> VmActionResult:
    return _power(actor, vm, "vm.start", must_run=False, refusal="{name} is already running.",
                  code="already_running", verb="start", done="{name} started.")


def vm_shutdown(*, actor: Actor, vm: VirtualMachine) -> VmActionResult:
    """Ask the guest to shut down (ACPI). The guest must cooperate; the state changes when it has."""
    return _power(actor, vm, "vm.shutdown", must_run=True, refusal="{name} is not running.", code="not_running",
                  verb="shutdown",
                  done="Shutdown requested: {name} powers off when its operating system agrees.")


def vm_reboot(*, actor: Actor, vm: VirtualMachine) -> VmActionResult:
    return _power(actor, vm, "vm.reboot", must_run=True, refusal="{name} is not running.", code="not_running",
                  verb="reboot", done="Reboot requested for {name}.")


def vm_force_off(*, actor: Actor, vm: VirtualMachine) -> VmActionResult:
    """Pull the plug (``virsh destroy``): the guest gets no chance to save anything."""
    return _power(actor, vm, "vm.force_off", must_run=True, refusal="{name} is already shut off.",
                  code="not_running", verb="destroy", done="{name} was forced off.")


def vm_set_autostart(*, actor: Actor, vm: VirtualMachine, enabled: bool) -> VmActionResult:
    dom = vm_checked(actor, vm, VmAction.OPERATE)
    with vm_audited(actor, "vm.autostart_on" if enabled else "vm.autostart_off", vm):
        dom.set_autostart(enabled)
    return VmActionResult(message=f"Autostart is {'on' if enabled else 'off'} for {vm.name}.", state=dom.state())


BULK_ACTIONS: dict[str, Callable[..., VmActionResult]] = {
    "start": vm_start, "shutdown": vm_shutdown, "reboot": vm_reboot, "force-off": vm_force_off,
}
BULK_LIMIT = 200  # VMs in one bulk request


@dataclass(frozen=True)
class BulkItem:
    uuid: str
    name: str
    ok: bool
    message: str


@dataclass(frozen=True)
class BulkResult:
    action: str
    items: tuple[BulkItem, ...]

    @property
    def message(self) -> str:
        done = sum(i.ok for i in self.items)
        return f"{self.action}: {done} of {len(self.items)} VMs done" + ("." if done == len(self.items) else
                                                                         ", the others refused (see below).")


def vm_bulk(*, actor: Actor, action: str, uuids: Iterable[str]) -> BulkResult:
    """One action on several VMs: each is its own service call (its own permission check and audit row), and each
    gets its own result; one refusal does not stop the others. VMs ``actor`` may not see read "no such VM"."""
    require_login(actor)
    if action not in BULK_ACTIONS:
        raise ValidationError(f"Unknown action {action!r}: use one of {', '.join(BULK_ACTIONS)}.",
                              fields={"action": [", ".join(BULK_ACTIONS)]})
    wanted = list(dict.fromkeys(str(u) for u in uuids))
    if not wanted:
        raise ValidationError("Choose at least one VM.", fields={"uuids": ["none chosen"]})
    if len(wanted) > BULK_LIMIT:
        raise ValidationError(f"At most {BULK_LIMIT} VMs at once.", fields={"uuids": [f"at most {BULK_LIMIT}"]})
    items = []
    for uuid in wanted:
        try:
            vm = vm_get(actor=actor, uuid=uuid)
        except NotFoundError as exc:
            items.append(BulkItem(uuid, "", False, exc.detail))
            continue
        try:
            result = BULK_ACTIONS[action](actor=actor, vm=vm)
        except (ServiceError, hv.HypervisorError) as exc:
            items.append(BulkItem(uuid, vm.name, False, exc.detail))
        else:
            items.append(BulkItem(uuid, vm.name, True, result.message))
    return BulkResult(action=action, items=tuple(items))


@dataclass
class DeleteResult:
    name: str
    deleted_volumes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # disk files left in place, with the reason
    failed: list[str] = field(default_factory=list)  # volumes libvirt refused to delete, with its reason

    @property
    def message(self) -> str:
        text = f"{self.name} was deleted."
        if self.deleted_volumes:
            text += " Deleted volumes: " + ", ".join(self.deleted_volumes) + "."
        if self.kept:
            text += " Kept: " + ", ".join(self.kept) + "."
        return text


def vm_state_event(event: hv.DomainEvent, host: Host | None = None) -> dict[str, Any]:
    """A VM's state change as the browsers receive it over ``/ws/events/``."""
    return {
        "kind": "vm", "uuid": event.uuid, "name": event.name, "event": event.event,
        "state": event.state.slug if event.state else "undefined",
        "label": event.state.label if event.state else "deleted",
        "host": host.name if host else event.uri,
    }


def vm_delete(*, actor: Actor, vm: VirtualMachine, delete_volumes: bool = False) -> DeleteResult:
    """Undefine a shut-off VM (with its NVRAM, managed-save image and snapshot metadata), and optionally the
    storage volumes of its writable disks. Shared and read-only media (ISOs) are never deleted; the cloud-init seed
    the portal made for the VM (``seed_path`` in its metadata) always is."""
    dom = vm_checked(actor, vm, VmAction.DELETE)
    result = DeleteResult(name=vm.name)
    with vm_audited(actor, "vm.delete_with_volumes" if delete_volumes else "vm.delete", vm) as notes:
        if dom.state().is_active:
            raise ConflictError(f"{vm.name} is running: force it off first, then delete it.", code="vm_running")
        conn = host_connection(vm.host)
        definition = dom.definition()
        volumes: list[hv.Volume] = []
        # the cloud-init seed the portal made for this VM goes with it, asked or not — unless another domain has it
        # in a drive too (a clone of this VM keeps the original's seed)
        seed = hv.volume_by_path(conn, definition.seed_path) if definition.seed_path else None
        if seed is not None:
            others = [u.domain_name for u in hv.domain_disk_users(conn).get(seed.path, ())
                      if u.domain_uuid != str(vm.uuid)]
            if others:
                result.kept.append(f"{seed.path} (the cloud-init seed, also in a drive of {len(others)} other VM(s))")
            else:
                volumes.append(seed)
        if delete_volumes:
            for disk in definition.disks:
                info = disk.info()
                if info.device != "disk" or not info.source:
                    continue
                if info.readonly or info.shared_media:
                    result.kept.append(f"{info.source} (read-only or shared)")
                    continue
                volume = hv.volume_by_path(conn, info.source)
                if volume is None:
                    result.kept.append(f"{info.source} (not in a storage pool)")
                else:
                    volumes.append(volume)
        audience = vm_audience(str(vm.uuid))  # before the record and its shares go
        dom.undefine()
        VirtualMachine.objects.filter(pk=vm.pk).delete()
        _history_forget(str(vm.uuid))
        # The event listener sends libvirt's "undefined" too, but may read the record after it is gone (then only
        # staff would hear of it): the other tabs of those who could see it learn it from here.
        gone = vm_state_event(hv.DomainEvent(vm.host.uri, str(vm.uuid), vm.name, "undefined", 0, None), vm.host)
        transaction.on_commit(lambda: publish(gone, user_ids=audience))
        for volume in volumes:
            try:
                volume.delete()
                result.deleted_volumes.append(volume.path)
            except hv.HypervisorError as exc:
                result.failed.append(f"{volume.path}: {exc.detail}")
        notes.extend(f"deleted {p}" for p in result.deleted_volumes)
        notes.extend(f"kept {p}" for p in result.kept)
        notes.extend(f"could not delete {p}" for p in result.failed)
    return result


def _history_forget(uuid: str) -> None:
    """Drop a deleted VM's usage history (monitoring). Its domain is gone already: a store that does not answer
    now only keeps the history until it expires, so the delete goes on."""
    try:
        vm_history_delete(uuid)
    except Exception as exc:  # noqa: BLE001 - the VM is deleted; its old graphs are not worth failing that for
        log.warning("could not delete the usage history of %s: %s", uuid, exc)


# ------------------------------------------------------------------------------------------------ sharing
@dataclass(frozen=True)
class ShareResult:
    message: str
    share_id: int | None = None


def _share_target(user: AbstractBaseUser | str | None,
                  group: Group | str | None) -> tuple[AbstractBaseUser | None, Group | None]:
    """The user or the group a share is for, by object or by name; field errors for anything else."""
    if (user is None or user == "") == (group is None or group == ""):
        raise ValidationError("Share with one user or one group.",
                              fields={"user": ["name a user or a group, not both"]})
    if isinstance(user, str):
        found = get_user_model().objects.filter(username=user.strip(), is_active=True).first()
        if found is None:
            raise ValidationError(f"There is no user {user.strip()!r}.", fields={"user": ["no such user"]})
        return found, None
    if isinstance(group, str):
        named = Group.objects.filter(name=group.strip()).first()
        if named is None:
            raise ValidationError(f"There is no group {group.strip()!r}.", fields={"group": ["no such group"]})
        return None, named
    return user, group


def _share_publish(vm: VirtualMachine, audience: list[int], what: str) -> None:
    """Tell everyone who could or can now see ``vm`` that who may do what changed (their pages re-read it)."""
    event = {"kind": "vm", "uuid": str(vm.uuid), "name": vm.name, "event": what, "host": vm.host.name}
    transaction.on_commit(lambda: publish(event, user_ids=audience))


def vm_share(*, actor: Actor, vm: VirtualMachine, user: AbstractBaseUser | str | None = None,
             group: Group | str | None = None, role: str) -> ShareResult:
    """Share ``vm`` with one user or one group (by object or name) as ``role`` (viewer, operator, manager), or
    change the role of an existing share. Owner and staff only."""
    require_login(actor)
    require_vm(actor, vm, VmAction.SHARE)
    if role not in SHARE_ROLES:
        raise ValidationError(f"Unknown role {role!r}: use one of {', '.join(SHARE_ROLES)}.",
                              fields={"role": [f"one of {', '.join(SHARE_ROLES)}"]})
    target_user, target_group = _share_target(user, group)
    if target_user is not None and target_user.pk == vm.owner_id:
        raise ValidationError(f"{target_user.get_username()} owns {vm.name} already.",
                              fields={"user": ["the owner has every right already"]})
    who = f"group {target_group.name}" if target_group else (target_user.get_username() if target_user else "")
    before = vm_audience(str(vm.uuid))
    with vm_audited(actor, "vm.share", vm) as notes, transaction.atomic():
        key = {"group": target_group} if target_group else {"user": target_user}
        try:
            share, made = VmShare.objects.update_or_create(
                vm=vm, **key, defaults={"role": role}, create_defaults={"role": role, "created_by": actor})
        except IntegrityError:
            raise ConflictError(f"{vm.name} was shared with {who} at the same moment: try again.",
                                code="share_conflict") from None
        notes.append(f"{who} as {role}")
    _share_publish(vm, sorted(set(before) | set(vm_audience(str(vm.uuid)))), "shared")
    verb = "shared with" if made else "now shared with"
    return ShareResult(message=f"{vm.name} is {verb} {who} as {role}.", share_id=share.pk)


def vm_share_update(*, actor: Actor, vm: VirtualMachine, share_id: int, role: str) -> ShareResult:
    """Change the role of share ``share_id`` of ``vm``."""
    share = _share_get(actor, vm, share_id)
    return vm_share(actor=actor, vm=vm, user=share.user, group=share.group, role=role)


def _share_get(actor: Actor, vm: VirtualMachine, share_id: int | str) -> VmShare:
    require_login(actor)
    require_vm(actor, vm, VmAction.SHARE)
    try:
        key = int(share_id)
    except (TypeError, ValueError):
        key = 0
    share: VmShare | None = VmShare.objects.select_related("user", "group").filter(vm=vm, pk=key).first()
    if share is None:
        raise NotFoundError(f"{vm.name} has no such share.")
    return share


def vm_unshare(*, actor: Actor, vm: VirtualMachine, share_id: int | str) -> ShareResult:
    """Remove share ``share_id`` of ``vm``: its user (or the group's members) lose what it gave them at once;
    work of theirs already queued fails when it starts (it checks again)."""
    share = _share_get(actor, vm, share_id)
    who = f"group {share.group.name}" if share.group else (share.user.get_username() if share.user else "")
    before = vm_audience(str(vm.uuid))
    with vm_audited(actor, "vm.unshare", vm) as notes:
        share.delete()
        notes.append(f"{who} (was {share.role})")
    _share_publish(vm, before, "unshared")
    return ShareResult(message=f"{vm.name} is no longer shared with {who}.")


def vm_record_claim(*, host: Host, uuid: str, name: str, owner_id: int | None) -> VirtualMachine:
    """The record of a domain just defined by the portal, owned by ``owner_id``. Race-free against
    :func:`vm_records_sync`: if a list read meanwhile saw the new domain and recorded it unowned, this claims
    that record instead of failing on the duplicate (a new domain's UUID is fresh, so any record of it is ours)."""
    key = uuid_mod.UUID(uuid)
    VirtualMachine.objects.bulk_create([VirtualMachine(host=host, uuid=key, name=name, owner_id=owner_id)],
                                       ignore_conflicts=True)
    VirtualMachine.objects.filter(uuid=key, owner__isnull=True).update(owner_id=owner_id, host=host, name=name)
    record: VirtualMachine = VirtualMachine.objects.select_related("host", "owner").get(uuid=key)
    return record


def vm_define(*, actor: Actor, host: Host, doc: hv.DomainDocument,
              owner: AbstractBaseUser | None = None) -> VirtualMachine:
    """Define a domain from a document and record who owns it (the actor, unless staff name another owner)."""
    require_login(actor)
    if not may_create_for(actor, owner):
        raise PermissionDeniedError("Only staff can create virtual machines for someone else.")
    doc.validate()
    if not doc.uuid:  # chosen here rather than by libvirt, so the audit entry names the VM it made
        doc.uuid = str(uuid_mod.uuid4())
    conn = host_connection(host)
    with audited(actor=actor, action="vm.define", target_type="vm", target=f"{doc.name or ''} {doc.uuid}",
                 host=host.uri):
        if hv.domain_exists(conn, doc.name or ""):
            raise ConflictError(f"A virtual machine named {doc.name} already exists on {host}.", code="name_taken")
        dom = hv.domain_define(conn, doc)
        try:
            return vm_record_claim(host=host, uuid=dom.uuid, name=dom.name, owner_id=(owner or actor).pk)
        except Exception:
            dom.undefine()
            raise


def vm_records_sync(drifts: Iterable[RecordsDrift]) -> None:
    """Make the records match libvirt after a list read saw them differ: domains defined outside the portal get
    an unowned record, records of domains deleted outside it go, renames are followed.

    Safe against a concurrent ``vm_define``: new records are inserted with "ignore conflicts" (an owner's record
    written first wins, and ``vm_record_claim`` takes over an unowned one), and a record is deleted only when libvirt
    says its domain is gone now (one lookup per stale record)."""
    for drift in drifts:
        if drift.missing:
            VirtualMachine.objects.bulk_create(
                [VirtualMachine(host=drift.host, uuid=uuid_mod.UUID(u), name=n) for u, n in drift.missing],
                ignore_conflicts=True)
        if drift.stale:
            conn = host_connection(drift.host)
            gone = [uuid_mod.UUID(u) for u in drift.stale if not _domain_exists(conn, u) and not vm_moving(u)]
            if gone:
                VirtualMachine.objects.filter(host=drift.host, uuid__in=gone).delete()
        for uuid, name in drift.renamed:
            VirtualMachine.objects.filter(host=drift.host, uuid=uuid_mod.UUID(uuid)).update(name=name)


def vm_record_forget(*, host: Host, uuid: str) -> None:
    """A domain's undefine event: drop its record, unless the domain is back (redefined with the same UUID)."""
    if not _domain_exists(host_connection(host), uuid):
        VirtualMachine.objects.filter(host=host, uuid=uuid_mod.UUID(uuid)).delete()


def vm_record_seen(*, host: Host, uuid: str, name: str) -> None:
    """A domain's define event: make sure it has a record (unowned when the portal did not define it)."""
    VirtualMachine.objects.bulk_create([VirtualMachine(host=host, uuid=uuid_mod.UUID(uuid), name=name)],
                                       ignore_conflicts=True)
    VirtualMachine.objects.filter(host=host, uuid=uuid_mod.UUID(uuid)).exclude(name=name).update(name=name)


def _domain_exists(conn: hv.Connection, uuid: str) -> bool:
    try:
        hv.domain_lookup(conn, uuid)
    except hv.DomainNotFound:
        return False
    return True


@undo_step("machines.undefine")
def _undo_define(params: dict[str, Any]) -> str | None:
    """Undo a domain the portal defined (a new VM, a clone): force it off if it runs, undefine it, drop its record."""
    conn = hv.registry.connection(params["uri"])
    try:
        dom = hv.domain_lookup(conn, params["uuid"])
    except hv.DomainNotFound:
        VirtualMachine.objects.filter(uuid=params["uuid"]).delete()
        return "it was already gone"
    if dom.state().is_active:
        dom.destroy()
    dom.undefine()
    VirtualMachine.objects.filter(uuid=params["uuid"]).delete()
    return None
