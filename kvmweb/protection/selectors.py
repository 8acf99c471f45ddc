"""Reads of the protection app: they return plain data, never a libvirt handle, and never write."""
from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, backup_role, is_staff, require_vm, role_check, role_may
from kvmweb.core.errors import NotFoundError
from kvmweb.jobs.models import Job
from kvmweb.machines.handles import vm_handle
from kvmweb.machines.models import VirtualMachine

from .models import Backup, Retention


# ------------------------------------------------------------------------------------------------ snapshots
@dataclass(frozen=True)
class VmSnapshots:
    """A VM's snapshots as a tree (``virsh snapshot-list --tree``) and whether it can take one now."""

    tree: tuple[hv.SnapshotNode, ...]
    state: hv.DomainState
    refusal: str | None  # why the VM cannot take a snapshot (its disks); None: it can

    @property
    def running(self) -> bool:
        return self.state.is_active

    @property
    def current(self) -> str | None:
        return next((n.snapshot.name for n in self.tree if n.snapshot.current), None)


def snapshot_overview(*, actor: Actor, vm: VirtualMachine) -> VmSnapshots:
    """The snapshots of ``vm`` for ``actor`` (who must see it): the tree, the state, the refusal if any. One XML
    read per snapshot (libvirt has no bulk read of them)."""
    require_vm(actor, vm, VmAction.VIEW)
    dom = vm_handle(vm)
    state = dom.state()
    refusal = hv.snapshot_refusal(dom.document())  # the disks; a running VM's memory is the form's choice
    return VmSnapshots(tree=tuple(hv.arrange_tree(hv.snapshot_list(dom))), state=state, refusal=refusal)


def snapshot_detail(*, actor: Actor, vm: VirtualMachine, name: str) -> hv.SnapshotInfo:
    """One snapshot of ``vm`` (404 in words when it has none of that name)."""
    require_vm(actor, vm, VmAction.VIEW)
    return hv.snapshot_get(vm_handle(vm), name)


# ------------------------------------------------------------------------------------------------ backups
@dataclass(frozen=True)
class BackupRow:
    """One backup as a list shows it, with what the reader may do with it."""

    backup: Backup
    job: Job | None  # the job making it (while it is being made)
    may_manage: bool


def backup_vm_record(backup: Backup) -> VirtualMachine | None:
    """The record of the VM a backup was made of, while it exists."""
    record: VirtualMachine | None = (VirtualMachine.objects.select_related("host", "owner")
                                     .filter(uuid=backup.vm_uuid).first())
    return record


def backup_get(*, actor: Actor, pk: int, action: VmAction = VmAction.VIEW) -> Backup:
    """Backup ``pk`` if ``actor`` may see it (and do ``action`` with it): while its VM exists, the VM's roles decide
    (a manager or the owner for a change); once it is gone, the backup's owner and staff. NotFoundError for missing
    and for not-yours alike, PermissionDeniedError for a role too low."""
    backup: Backup | None = Backup.objects.select_related("host", "owner", "made_by").filter(pk=pk).first()
    if backup is None:
        raise NotFoundError("No such backup.")
    role = backup_role(actor, vm=backup_vm_record(backup), owner_id=backup.owner_id)
    try:
        role_check(role, action)
    except NotFoundError:
        raise NotFoundError("No such backup.") from None
    return backup


def backup_job(backup: Backup) -> Job | None:
    """The unfinished job making or restoring ``backup``, if any."""
    job: Job | None = (Job.objects.filter(kind__in=("backup.create", "backup.restore"), params__backup_id=backup.pk,
                                          state__in=Job.UNFINISHED).order_by("-pk").first())
    return job


def backup_list(*, actor: Actor, vm: VirtualMachine) -> list[BackupRow]:
    """The backups of ``vm``, newest first (the caller checked that ``actor`` may see the VM)."""
    role = backup_role(actor, vm=vm, owner_id=None)
    role_check(role, VmAction.VIEW)
    rows = list(Backup.objects.filter(vm_uuid=vm.uuid).select_related("made_by", "owner", "host"))
    making = {int(j.params.get("backup_id", 0)): j for j in Job.objects.filter(
        kind="backup.create", state__in=Job.UNFINISHED, target=str(vm.uuid))}
    may = role_may(role, VmAction.MANAGE)
    return [BackupRow(backup=b, job=making.get(b.pk), may_manage=may) for b in rows]


def backup_orphans(*, actor: Actor) -> list[Backup]:
    """Backups whose VM is gone that ``actor`` may still use (their own; staff: all)."""
    live = VirtualMachine.objects.values("uuid")
    rows = Backup.objects.exclude(vm_uuid__in=live).select_related("host", "owner")
    return list(rows if is_staff(actor) else rows.filter(owner_id=getattr(actor, "pk", None)))


def backup_keep(backup: Backup) -> int:
    """How many complete backups of ``backup``'s VM retention keeps: the owner's rule, else its pool's, else
    ``KVMWEB_BACKUP_KEEP``."""
    rule = None
    if backup.owner_id is not None:
        rule = Retention.objects.filter(user_id=backup.owner_id).first()
    if rule is None:
        rule = Retention.objects.filter(user__isnull=True, host_id=backup.host_id, pool=backup.pool).first()
    return rule.keep if rule is not None else int(settings.KVMWEB_BACKUP_KEEP)


def backup_retention_list() -> list[Retention]:
    """Every retention rule (staff's page and API: the caller checks staff)."""
    return list(Retention.objects.select_related("user", "host").order_by("user__username", "host__name", "pool"))


def backup_may_manage(actor: Actor, backup: Backup) -> bool:
    return role_may(backup_role(actor, vm=backup_vm_record(backup), owner_id=backup.owner_id), VmAction.MANAGE)

