"""Maintenance mode and evacuation of a host (staff only).

A host in maintenance gets no new VMs: placement skips it and an explicit choice of it is refused. ``host_evacuate``
queues a ``host.evacuate`` job whose children are one ``vm.migrate`` job per running VM: the parent places and
runs them one after another (each placement sees the moves before it), and its progress is the children done.
VMs that cannot move are named with the reason, before anything starts and again in the parent's log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, require_staff
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, ServiceError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobContext, execute_child
from kvmweb.jobs.services import job_create, job_log
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_domain

from .migration import KIND as MIGRATE, migration_plan, vm_migrate

EVACUATE = "host.evacuate"


@dataclass(frozen=True)
class MaintenanceResult:
    host: Host
    message: str


def host_maintenance_set(*, actor: Actor, host: Host, on: bool) -> MaintenanceResult:
    """Put ``host`` into maintenance (no new VMs; evacuate may then move its running VMs) or take it out."""
    require_staff(actor, "put hosts into maintenance")
    if host.maintenance == on:
        return MaintenanceResult(host, f"{host.name} is {'in' if on else 'out of'} maintenance already.")
    with audited(actor=actor, action="host.maintenance_on" if on else "host.maintenance_off", target_type="host",
                 target=host.name, host=host.uri):
        Host.objects.filter(pk=host.pk).update(maintenance=on)
        host.maintenance = on
    return MaintenanceResult(host, f"{host.name} is in maintenance: it gets no new VMs." if on
                             else f"{host.name} is out of maintenance: it takes new VMs again.")


@dataclass(frozen=True)
class EvacuationPlan:
    movable: list[tuple[VirtualMachine, str]]  # the VM and where placement would send it now
    stuck: list[tuple[VirtualMachine, str]]  # the VM and why it cannot move

    @property
    def stuck_text(self) -> str:
        return "; ".join(f"{vm.name}: {why}" for vm, why in self.stuck)


def _running_records(host: Host) -> list[VirtualMachine]:
    conn = host_connection(host)
    active = {row.uuid for row in hv.domain_list(conn) if row.state.is_active}
    return [vm for vm in VirtualMachine.objects.select_related("host", "owner").filter(host=host)
            if str(vm.uuid) in active]


def _plan_one(vm: VirtualMachine) -> tuple[bool, str]:
    """Whether ``vm`` can move now (shared storage where the destination reaches it, else its disks copied)."""
    try:
        dom = vm_domain(vm)
        try:
            plan = migration_plan(vm=vm, dom=dom, dest=None, copy_storage=False, live=True)
        except ConflictError as exc:
            if exc.code != "disk_unreachable":
                raise
            plan = migration_plan(vm=vm, dom=dom, dest=None, copy_storage=True, live=True)
    except (ServiceError, hv.HypervisorError) as exc:
        return False, exc.detail
    return True, f"to {plan.dest.name} ({plan.how})"


def evacuation_plan(host: Host) -> EvacuationPlan:
    movable: list[tuple[VirtualMachine, str]] = []
    stuck: list[tuple[VirtualMachine, str]] = []
    for vm in _running_records(host):
        ok, text = _plan_one(vm)
        (movable if ok else stuck).append((vm, text))
    return EvacuationPlan(movable=movable, stuck=stuck)


def host_evacuate(*, actor: Actor, host: Host) -> Job:
    """Queue the ``host.evacuate`` job of a host in maintenance: every running VM moves live to a placed host."""
    require_staff(actor, "evacuate hosts")
    if not host.maintenance:
        raise ConflictError(f"Put {host.name} into maintenance first: otherwise new VMs may land on it meanwhile.",
                            code="not_in_maintenance")
    plan = evacuation_plan(host)
    if not plan.movable:
        if plan.stuck:
            raise ConflictError(f"No running VM of {host.name} can move: {plan.stuck_text}.", code="cannot_move")
        raise ConflictError(f"No VM runs on {host.name}: nothing to move.", code="nothing_to_move")
    with audited(actor=actor, action="host.evacuate", target_type="host", target=host.name, host=host.uri) as notes:
        job = job_create(
            actor=actor, kind=EVACUATE, title=f"Evacuate {host.name} ({len(plan.movable)} VM(s))",
            target_type="host", target=host.name, host=host,
            params={"host_id": host.pk, "uuids": [str(vm.uuid) for vm, _ in plan.movable],
                    "stuck": [[vm.name, why] for vm, why in plan.stuck]},
        )
        notes.append(f"job {job.pk}: " + ", ".join(f"{vm.name} {where}" for vm, where in plan.movable)
                     + (f"; cannot move: {plan.stuck_text}" if plan.stuck else ""))
    return job


def host_evacuate_run(ctx: JobContext) -> dict[str, Any]:
    """The ``host.evacuate`` job: place and run one ``vm.migrate`` child per VM, in turn."""
    p = ctx.params
    host = Host.objects.get(pk=p["host_id"])
    actor = get_user_model().objects.filter(pk=ctx.job.actor_id).first()
    require_staff(actor, "evacuate hosts")
    for name, why in p.get("stuck", []):
        ctx.log(f"{name} cannot move: {why}", "warning")
    uuids: list[str] = p["uuids"]
    children: list[int] = []
    moved, failed = [], []
    for i, uuid in enumerate(uuids):
        ctx.check_cancelled()
        vm = VirtualMachine.objects.select_related("host", "owner").filter(uuid=uuid).first()
        if vm is None or vm.host_id != host.pk:
            ctx.log(f"{vm.name if vm else uuid} is no longer on {host.name}: skipped.")
            continue
        try:
            child = _child(actor, vm, ctx.job_id)
        except (ServiceError, hv.HypervisorError) as exc:
            failed.append(vm.name)
            ctx.log(f"{vm.name} cannot move: {exc.detail}", "warning")
            continue
        children.append(child.pk)
        ctx.set_result(children=children)
        ctx.log(f"{vm.name}: job #{child.pk}, {child.title}.")
        done = execute_child(MIGRATE, child.pk, worker=ctx.job.worker)
        if done is not None and done.state == Job.State.SUCCEEDED:
            moved.append(vm.name)
        else:
            failed.append(vm.name)
            job_log(job_id=ctx.job_id, message=f"{vm.name} did not move: "
                    f"{done.error if done is not None and done.error else 'its job ended ' + (done.state if done else '?')}.",
                    level="warning")
        ctx.progress(int(100 * (i + 1) / len(uuids)))
        ctx.check_cancelled()
    if failed or p.get("stuck"):
        left = failed + [name for name, _ in p.get("stuck", [])]
        if not moved:
            raise ConflictError(f"Nothing moved off {host.name}: {', '.join(left)} stay(s) there.")
        ctx.log(f"Moved {', '.join(moved)}; still on {host.name}: {', '.join(left)}.", "warning")
    else:
        ctx.log(f"Every running VM left {host.name}: {', '.join(moved)}.")
    return {"children": children, "moved": moved, "failed": failed}


def _child(actor: Actor, vm: VirtualMachine, parent: int) -> Job:
    dom = vm_domain(vm)
    try:
        migration_plan(vm=vm, dom=dom, dest=None, copy_storage=False, live=True)
        copy = False
    except ConflictError as exc:
        if exc.code != "disk_unreachable":
            raise
        copy = True
    return vm_migrate(actor=actor, vm=vm, dest_host=None, copy_storage=copy, live=True, parent=parent)


