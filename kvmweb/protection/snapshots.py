"""Snapshots of a VM (``virsh snapshot-create-as``, ``snapshot-revert``, ``snapshot-delete``): each a Job.

The services (in the request) check the permission (the manager's role or ownership: ``VmAction.MANAGE``), validate
everything — the name, the description, whether the VM's disks can hold an internal snapshot
(:func:`hv.snapshot_refusal`), a name already taken, a revert of a running VM without confirmation, the owner's disk
quota — audit, and queue the job. The job bodies (in the worker) ask again whether the job's actor may still
manage the VM (``vm_recheck``), check the VM again (it may have changed state since), and do the libvirt call with a
readable log.

**Quota.** The quota's disk usage counts each volume's capacity, or its allocation when that is greater
(``storage.selectors.disk_usage``: a qcow2 holding snapshots can outgrow its virtual size). A new snapshot needs room
for its worst case in the VM owner's quota: the current allocation of the disks it covers (the clusters it keeps
when the guest rewrites them) plus the guest's memory when it saves the memory state.
"""
from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction
from kvmweb.accounts.services import check_quota
from kvmweb.core.errors import ConflictError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import undo_step
from kvmweb.jobs.runner import JobContext
from kvmweb.jobs.services import job_create
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_audited, vm_checked, vm_recheck

DESCRIPTION_MAX = hv.SNAPSHOT_DESCRIPTION_MAX


@dataclass(frozen=True)
class SnapshotPlan:
    """What a new snapshot covers and the most it may add to the owner's disk usage."""

    disks: tuple[str, ...]
    skip: tuple[str, ...]  # CD-ROM drives
    memory: bool
    worst_case: int  # bytes
    sources: dict[str, str]  # target → file
    allocations: dict[str, int]  # bytes allocated per disk now


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if seconds else "?"


def snapshot_validate_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("A snapshot needs a name.", fields={"name": ["A snapshot needs a name."]})
    try:
        return hv.validate_name(name, what="snapshot name")
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"name": [exc.detail]}) from None


def _allocations(conn: hv.Connection, sources: dict[str, str]) -> dict[str, int]:
    """The bytes libvirt reports allocated for the disks (target → file; 0 for a file in no pool)."""
    out: dict[str, int] = {}
    for target, path in sources.items():
        volume = hv.volume_by_path(conn, path)
        out[target] = volume.spec().allocation if volume is not None else 0
    return out


def snapshot_plan(*, vm: VirtualMachine, dom: hv.Domain, memory: bool) -> SnapshotPlan:
    """Refuse (409, ``snapshot_unsupported``, nothing made) when the VM cannot take an internal snapshot; else what
    it covers. ``memory`` counts only for a running VM (a shut-off VM has none to save)."""
    running = dom.state().is_active
    doc = dom.document()
    reason = hv.snapshot_refusal(doc, running=running, memory=memory)
    if reason is not None:
        raise ConflictError(f"{vm.name} cannot take a snapshot: {reason}", code="snapshot_unsupported",
                            fields={"memory": [reason]} if reason == hv.RUNNING_WITHOUT_MEMORY else None)
    disks, skip = hv.snapshot_disks(doc)
    memory = memory and running
    sources = {d.target or "": d.source for d in doc.disks if d.target in disks and d.source}
    allocations = _allocations(dom.conn, sources)
    worst = sum(allocations.values())
    if memory:
        worst += (doc.memory_kib or 0) * 1024
    return SnapshotPlan(disks=disks, skip=skip, memory=memory, worst_case=worst, sources=sources,
                        allocations=allocations)


def snapshot_create(*, actor: Actor, vm: VirtualMachine, name: str, description: str = "",
                    memory: bool = True) -> Job:
    """Queue ``virsh snapshot-create-as VM NAME --description TEXT`` as a Job: a running VM's snapshot holds its
    memory (``memory=False`` is refused for a running VM: see :mod:`kvmweb.hypervisor.snapshots`), a shut-off VM's
    its disks only."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    name = snapshot_validate_name(name)
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        message = f"A description may have at most {DESCRIPTION_MAX} characters (this one has {len(description)})."
        raise ValidationError(message, fields={"description": [message]})
    plan = snapshot_plan(vm=vm, dom=dom, memory=memory)
    if hv.snapshot_exists(dom, name):
        message = f"{vm.name} already has a snapshot named {name}."
        raise ConflictError(message, code="name_taken", fields={"name": [message]})
    if vm.owner is not None:
        check_quota(vm.owner, disk_bytes=plan.worst_case)
    with vm_audited(actor, "vm.snapshot_create", vm) as notes:
        what = "with its memory" if plan.memory else "disks only"
        job = job_create(
            actor=actor, kind="snapshot.create", title=f"Snapshot {name} of {vm.name} ({what})",
            target_type="vm", target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "uuid": str(vm.uuid), "name": name, "description": description,
                    "memory": plan.memory, "disks": list(plan.disks), "skip": list(plan.skip)},
        )
        notes.append(f"{name}: job {job.pk}")
    return job


def snapshot_revert(*, actor: Actor, vm: VirtualMachine, name: str, confirm: bool = False) -> Job:
    """Queue ``virsh snapshot-revert VM NAME`` as a Job: the disks (and memory) as the snapshot holds them, the VM
    running, paused or shut off as it was then. A running VM's current state is lost: that needs ``confirm``."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    snap = hv.snapshot_get(dom, name)
    state = dom.state()
    if state.is_active and not confirm:
        message = (f"{vm.name} is {state.label}: reverting to {name} loses its current state (its memory and every "
                   "change to its disks since the snapshot). Confirm to revert.")
        raise ConflictError(message, code="confirm_needed", fields={"confirm": [message]})
    with vm_audited(actor, "vm.snapshot_revert", vm) as notes:
        job = job_create(
            actor=actor, kind="snapshot.revert", title=f"Revert {vm.name} to {name}", target_type="vm",
            target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "uuid": str(vm.uuid), "name": name, "state": snap.state},
        )
        notes.append(f"{name}: job {job.pk}")
    return job


def snapshot_delete(*, actor: Actor, vm: VirtualMachine, name: str, children: bool = False) -> Job:
    """Queue ``virsh snapshot-delete VM NAME [--children]`` as a Job."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    hv.snapshot_get(dom, name)  # a 404 in words when there is none
    with vm_audited(actor, "vm.snapshot_delete", vm) as notes:
        job = job_create(
            actor=actor, kind="snapshot.delete",
            title=f"Delete snapshot {name}{' and its children' if children else ''} of {vm.name}",
            target_type="vm", target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "uuid": str(vm.uuid), "name": name, "children": bool(children)},
        )
        notes.append(f"{name}{' with children' if children else ''}: job {job.pk}")
    return job


# ------------------------------------------------------------------------------------------------ the jobs
def _domain(ctx: JobContext, what: str) -> tuple[VirtualMachine, hv.Domain]:
    p = ctx.params
    record = vm_recheck(actor_id=ctx.job.actor_id, uuid=p["uuid"], action=VmAction.MANAGE, what=what)
    conn = host_connection(Host.objects.get(pk=p["host_id"]))
    return record, hv.domain_lookup(conn, str(uuid_mod.UUID(p["uuid"])))


@undo_step("protection.snapshot_delete")
def _undo_snapshot(params: dict[str, Any]) -> str | None:
    """Remove a snapshot a failed or cancelled create job made (idempotent)."""
    try:
        conn = host_connection(Host.objects.get(pk=params["host_id"]))
        dom = hv.domain_lookup(conn, params["uuid"])
        hv.snapshot_delete(dom, params["name"])
    except (hv.DomainNotFound, hv.SnapshotNotFound):
        return "nothing to remove"
    return f"removed snapshot {params['name']}"


def snapshot_create_run(ctx: JobContext) -> dict[str, Any] | None:
    """The ``snapshot.create`` job."""
    p = ctx.params
    vm, dom = _domain(ctx, "snapshot")
    name, memory = p["name"], bool(p["memory"])
    plan = snapshot_plan(vm=vm, dom=dom, memory=memory)  # the VM may have started or stopped since
    if plan.memory != memory:
        raise ConflictError(f"{vm.name} {'started' if plan.memory else 'stopped'} after the snapshot was asked for: "
                            "nothing was made; ask again.")
    if hv.snapshot_exists(dom, name):
        raise ConflictError(f"A snapshot named {name} appeared on {vm.name} meanwhile: nothing was made.")
    ctx.check_cancelled()
    ctx.undo("protection.snapshot_delete", f"delete snapshot {name}", host_id=p["host_id"], uuid=dom.uuid,
             name=name)
    if plan.memory:
        ctx.progress(10, f"Saving the memory and the disks ({', '.join(plan.disks)}) of {vm.name} into {name}; the "
                         "guest pauses while QEMU writes its memory.")
    else:
        ctx.progress(10, f"Snapshotting the disks ({', '.join(plan.disks)}) of {vm.name} (shut off) into {name}.")
    spec = hv.SnapshotSpec.new(name=name, description=p.get("description", ""), memory=plan.memory,
                               disks=plan.disks, skip=plan.skip)
    info = hv.snapshot_create(dom, spec)
    after = _allocations(dom.conn, plan.sources)
    grown = "; ".join(f"{t} {hv.human(plan.allocations[t])} → {hv.human(after.get(t, 0))} allocated"
                      for t in plan.disks if t in plan.allocations)
    what = "running, with memory" if info.memory else f"{info.state}, disks only"
    ctx.progress(100, f"Snapshot {name} taken ({what}, {_when(info.created)}){': ' + grown if grown else ''}.")
    return {"snapshot": info.name, "memory": info.memory, "state": info.state}


def snapshot_revert_run(ctx: JobContext) -> dict[str, Any] | None:
    """The ``snapshot.revert`` job."""
    p = ctx.params
    vm, dom = _domain(ctx, "revert")
    name = p["name"]
    snap = hv.snapshot_get(dom, name)
    ctx.progress(5, f"Reverting {vm.name} ({dom.state().label}) to {name}, taken {_when(snap.created)} while it was "
                    f"{snap.state}{' (with its memory)' if snap.memory else ' (disks only)'}.")
    ctx.check_cancelled()
    hv.snapshot_revert(dom, name)
    state = dom.state()
    ctx.progress(100, f"{vm.name} is back at {name}: {state.label}.")
    return {"snapshot": name, "state": state.slug}


def snapshot_delete_run(ctx: JobContext) -> dict[str, Any] | None:
    """The ``snapshot.delete`` job."""
    p = ctx.params
    vm, dom = _domain(ctx, "delete snapshots of")
    name, children = p["name"], bool(p["children"])
    below = hv.descendants(hv.snapshot_list(dom), name)
    hv.snapshot_get(dom, name)
    if children and below:
        ctx.progress(5, f"Deleting snapshot {name} of {vm.name} and below it: {', '.join(below)}.")
    else:
        ctx.progress(5, f"Deleting snapshot {name} of {vm.name}"
                        + (f" (its children {', '.join(below)} stay, under its parent)." if below else "."))
    ctx.check_cancelled()
    hv.snapshot_delete(dom, name, children=children)
    gone = [name, *below] if children else [name]
    ctx.progress(100, f"Deleted {', '.join(gone)}.")
    return {"deleted": gone}
