"""Cloning a VM (``virt-clone`` parity), as a Job with real progress (bytes copied), cancel and undo.

``vm_clone`` (in the request) checks and plans, then queues the ``storage.clone`` job; ``clone_run`` (in the
worker) does the work. Each piece of work records its undo step BEFORE it is done (a new volume → delete it; the
new definition → undefine it; a paused source → resume it), so a failed, cancelled or killed clone leaves nothing
half-made. The clone's definition comes from the source's full definition (secrets included) through
``DomainDocument.clone_as``.
"""
from __future__ import annotations

import threading
import time
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, connection

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, actor_id
from kvmweb.accounts.selectors import quota_reservation
from kvmweb.accounts.services import check_quota, quota_held
from kvmweb.core.errors import ConflictError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.registry import undo_step
from kvmweb.jobs.runner import JobContext
from kvmweb.jobs.services import job_create
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_audited, vm_checked, vm_recheck, vm_record_claim

from .models import VolumeOwner
from .services import check_space

# ------------------------------------------------------------------------------------------------ clone a VM
CLONE_MODES = ("full", "linked")


@dataclass(frozen=True)
class CloneDisk:
    target: str
    pool: str
    source: str  # volume name
    source_path: str
    new_name: str
    format: str  # of the new volume
    allocation: int  # bytes the source holds (what a full copy writes)
    capacity: int = 0  # the new volume's virtual size (a linked clone's overlay has its backing file's)

    def as_params(self) -> dict[str, object]:
        return dict(vars(self))


def clone_suggest_name(host: Host, source: str) -> str:
    """``<source>-clone``, or ``<source>-clone-2``... whichever no domain on the host has (virt-clone's way)."""
    taken = {d.name for d in hv.domain_list(host_connection(host), sizes=False)}
    stem = source[:58]
    candidate, n = f"{stem}-clone", 2
    while candidate in taken:
        candidate, n = f"{stem}-clone-{n}", n + 1
    return candidate


def clone_plan(*, host: Host, dom: hv.Domain, name: str, mode: str) -> list[CloneDisk]:
    """Which disks get copied and under which names: every writable disk, in its own pool, named like virt-clone
    names them (``new.qcow2``, ``new-1.qcow2``...). Read-only and shared media (ISOs) stay shared."""
    conn = host_connection(host)
    plan: list[CloneDisk] = []
    taken: dict[str, set[str]] = {}
    for disk in (d.info() for d in dom.definition().disks):
        source = disk.own_source
        if source is None:
            continue
        volume = hv.volume_by_path(conn, source)
        if volume is None:
            raise ValidationError(f"Disk {disk.target} ({source}) is not in a storage pool; the portal can "
                                  "only clone disks that live in pools.")
        pool = hv.pool_lookup(conn, volume.pool_name())
        info = volume.info(pool=pool.name)
        if pool.name not in taken:
            taken[pool.name] = {v.name for v in pool.volumes()}
        fmt = "qcow2" if mode == "linked" else info.format
        _stem, ext = hv.split_ext(info.name)
        new_name = hv.file_name_for(name, ext if mode == "full" and ext else "qcow2", taken[pool.name])
        taken[pool.name].add(new_name)
        plan.append(CloneDisk(target=disk.target, pool=pool.name, source=info.name, source_path=info.path,
                              new_name=new_name, format=fmt, allocation=info.allocation,
                              capacity=info.capacity))
    return plan


def vm_clone(*, actor: Actor, vm: VirtualMachine, name: str = "", mode: str = "full",
             pause_source: bool = False) -> Job:
    """Queue a clone of ``vm`` (``virt-clone --original SRC --name NEW --auto-clone``) as a Job; returns the Job.

    Full mode copies every writable disk; linked mode makes qcow2 overlays on the source's disks (the source must
    then stay, and stay shut off). The source must be shut off, or the user agrees to pause it during the copy.
    The clone belongs to ``actor``."""

    dom = vm_checked(actor, vm, VmAction.MANAGE)
    if mode not in CLONE_MODES:
        raise ValidationError(f"Unknown clone mode {mode!r}: use full or linked.", fields={"mode": list(CLONE_MODES)})
    name = (name or "").strip() or clone_suggest_name(vm.host, vm.name)
    try:
        hv.validate_name(name)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"name": [exc.detail]}) from None
    if hv.domain_exists(host_connection(vm.host), name):
        raise ConflictError(f"A virtual machine named {name} already exists on {vm.host}.", code="name_taken")
    state = dom.state()
    if state.is_active:
        if mode == "linked":
            raise ConflictError(f"{vm.name} is {state.label}: shut it off for a linked clone (it must not write "
                                "to the disks the clone reads from).", code="vm_running")
        if not pause_source:
            raise ConflictError(f"{vm.name} is {state.label}: shut it off first, or confirm pausing it during the "
                                "copy.", code="vm_running")
    plan = clone_plan(host=vm.host, dom=dom, name=name, mode=mode)
    source = dom.info()  # the clone counts in the quota like the source: its vCPUs, memory and disks' virtual size
    vcpus, memory_mib, disk_bytes = source.vcpus, source.max_memory_kib // 1024, sum(d.capacity for d in plan)
    check_quota(actor, vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_bytes=disk_bytes)
    if mode == "full":
        conn = host_connection(vm.host)
        for pool_name in {d.pool for d in plan}:
            need = sum(d.allocation for d in plan if d.pool == pool_name)
            check_space(hv.pool_lookup(conn, pool_name), need, f"Copying the disks ({hv.human(need)})")
    # Checked again under the quota lock with the job that reserves what the clone will take until it exists.
    with vm_audited(actor, f"vm.clone_{mode}", vm) as notes, quota_held(actor, vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_bytes=disk_bytes):
        job = job_create(
            actor=actor, kind="storage.clone", title=f"Clone {vm.name} → {name} ({mode})",
            target_type="vm", target=str(vm.uuid), host=vm.host,
            params={"host_id": vm.host.pk, "source_uuid": str(vm.uuid), "name": name, "mode": mode,
                    "pause": bool(pause_source and state.is_active), "owner_id": actor_id(actor),
                    "disks": [d.as_params() for d in plan], "quota": quota_reservation(vms=1, vcpus=vcpus, memory_mib=memory_mib, disk_bytes=disk_bytes)},
        )
        notes.append(f"{name}: job {job.pk}")
    return job


# ------------------------------------------------------------------------------------------------ the job
POLL = 0.5  # seconds between progress reads during a copy


def _conn(host_id: int) -> hv.Connection:
    return host_connection(Host.objects.get(pk=host_id))


@undo_step("storage.resume_domain")
def _undo_pause(params: dict[str, Any]) -> str | None:
    try:
        dom = hv.domain_lookup(_conn(params["host_id"]), params["uuid"])
        if dom.state() == hv.DomainState.PAUSED:
            dom.resume()
            return "resumed"
    except hv.DomainNotFound:
        return "the source is gone"
    return "it was not paused"


class CopyWatcher:
    """Reports the bytes a running full copy has written, read from the new volume's allocation while libvirt
    copies (the copy call itself blocks until done)."""

    def __init__(self, ctx: JobContext, pool: hv.Pool, name: str, done_before: int, total: int) -> None:
        self.ctx, self.pool, self.name = ctx, pool, name
        self.done_before, self.total = done_before, max(total, 1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"clone-watch-{name}", daemon=True)

    def __enter__(self) -> CopyWatcher:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self.stop.wait(POLL):
                try:
                    written = self.pool.volume(self.name).info(pool=self.pool.name).allocation
                except hv.HypervisorError:
                    continue  # not created yet
                self.ctx.progress(_percent(self.done_before + written, self.total))
        finally:
            connection.close()


def _copy_running(ctx: JobContext, source: hv.Domain, target: str, pool: hv.Pool, spec: hv.VolumeSpec,
                  done: int, weight: int, total: int) -> hv.Volume:
    """Copy a disk QEMU holds open (a paused guest's) with a block-copy job: real progress from QEMU, and a cancel
    stops it at once. The job ends without switching the guest over, leaving a complete copy."""
    new = pool.create_volume(spec)
    source.block_copy_start(target, new.path, spec.format)
    finished = False
    try:
        while True:
            progress = source.block_job_progress(target)
            if progress is None:
                raise ConflictError(f"The copy of {target} stopped unexpectedly.")
            ctx.progress(_percent(done + weight * progress.cur // max(progress.end, 1), total))
            if progress.ready:
                break
            ctx.check_cancelled()
            time.sleep(POLL / 5)
        source.block_job_abort(target)
        finished = True
    finally:
        if not finished:
            try:
                source.block_job_abort(target)
            except hv.HypervisorError:
                pass
    return new


def _percent(done: int, total: int) -> int:
    """Copy progress mapped into 5..95 % (the rest is checking and defining)."""
    return 5 + min(90, int(90 * done / max(total, 1)))


def clone_run(ctx: JobContext) -> dict[str, Any] | None:
    """The ``storage.clone`` job (in the Celery worker): copy or link the disks, define the clone, resume the
    source. Each step records its undo first."""
    p = ctx.params
    host_id, mode, name = p["host_id"], p["mode"], p["name"]
    vm_recheck(actor_id=ctx.job.actor_id, uuid=p["source_uuid"], action=VmAction.MANAGE, what="clone")
    conn = _conn(host_id)
    source = hv.domain_lookup(conn, p["source_uuid"])
    ctx.progress(1, f"Cloning {source.name} → {name} ({mode}).")
    state = source.state()
    if state.is_active:
        if not p.get("pause") or mode == "linked":
            raise ConflictError(f"{source.name} is {state.label}: shut it off first.")
        ctx.undo("storage.resume_domain", f"resume {source.name}", host_id=host_id, uuid=source.uuid)
        if state != hv.DomainState.PAUSED:
            source.suspend()
            ctx.log(f"Paused {source.name} for the copy.")
    source_doc = source.definition()  # INACTIVE | SECURE: a VNC password and other secrets go to the clone too
    disks: list[dict[str, Any]] = p["disks"]
    total = sum(int(d["allocation"]) for d in disks) if mode == "full" else len(disks)
    done = 0
    new_paths: dict[str, str] = {}
    formats: dict[str, str] = {}
    for disk in disks:
        ctx.check_cancelled()
        pool = hv.pool_lookup(conn, disk["pool"])
        if pool.has_volume(disk["new_name"]):
            raise ConflictError(f"A volume named {disk['new_name']} appeared in pool {pool.name} meanwhile.")
        src = pool.volume(disk["source"])
        ctx.undo("storage.delete_volume", f"delete the new volume {pool.name}/{disk['new_name']}",
                 host_id=host_id, pool=pool.name, name=disk["new_name"])
        if mode == "full":
            ctx.log(f"Copying {disk['target']}: {src.path} → {disk['new_name']} ({hv.human(int(disk['allocation']))}).")
            spec = hv.VolumeSpec(name=disk["new_name"], capacity=src.spec().capacity, format=disk["format"])
            if state.is_active:
                new = _copy_running(ctx, source, disk["target"], pool, spec, done, int(disk["allocation"]), total)
            else:
                with CopyWatcher(ctx, pool, disk["new_name"], done, total):
                    new = pool.clone_volume(src, spec)
            done += int(disk["allocation"])
        else:
            new = pool.create_overlay(src, disk["new_name"])
            done += 1
            ctx.log(f"Linked {disk['target']}: {disk['new_name']} reads unchanged data from {src.path}.")
        VolumeOwner.objects.update_or_create(host_id=host_id, pool=pool.name, name=disk["new_name"],
                                             defaults={"owner_id": p["owner_id"]})
        new_paths[disk["target"]] = new.path
        formats[disk["target"]] = disk["format"]
        ctx.progress(_percent(done, total))
    ctx.check_cancelled()
    new_uuid = str(uuid_mod.uuid4())
    taken_macs = [nic.mac for row in hv.domain_nics_all(conn) for nic in row.nics]
    clone_doc = source_doc.clone_as(name=name, uuid=new_uuid, disk_sources=new_paths, disk_formats=formats,
                                    taken_macs=taken_macs)
    _clone_nvram(ctx, conn, host_id, source_doc, clone_doc)
    # the same undo step as a VM creation: destroy if running, undefine, drop the record
    ctx.undo("machines.undefine", f"undefine {name}", uri=conn.uri, uuid=new_uuid)
    dom = hv.domain_define(conn, clone_doc)
    close_old_connections()
    host = Host.objects.get(pk=host_id)
    vm_record_claim(host=host, uuid=dom.uuid, name=dom.name, owner_id=p["owner_id"])
    ctx.check_cancelled()
    if state.is_active and state != hv.DomainState.PAUSED:
        source.resume()
        ctx.log(f"Resumed {source.name}.")
    ctx.progress(100, f"{name} is defined ({dom.uuid}).")
    return {"uuid": dom.uuid, "name": dom.name, "volumes": list(new_paths.values()), "mode": mode}


def _clone_nvram(ctx: JobContext, conn: hv.Connection, host_id: int, source: hv.DomainDocument,
                 clone: hv.DomainDocument) -> None:
    """A UEFI guest's NVRAM (its boot entries): copied into the clone's own file when it is a storage volume, as
    virt-clone does; otherwise libvirt makes a fresh one from the firmware's template at the clone's first boot."""
    if not source.nvram or not clone.nvram:
        return
    volume = hv.volume_by_path(conn, source.nvram)
    if volume is None:
        ctx.log(f"The NVRAM {source.nvram} is in no storage pool: the clone gets a fresh one at its first boot.")
        return
    pool = hv.pool_lookup(conn, volume.pool_name())
    name = clone.nvram.rsplit("/", 1)[-1]
    ctx.undo("storage.delete_volume", f"delete the clone's NVRAM {pool.name}/{name}", host_id=host_id,
             pool=pool.name, name=name)
    spec = volume.spec()
    copy = pool.clone_volume(volume, hv.VolumeSpec(name=name, capacity=spec.capacity, format=spec.format))
    clone.nvram = copy.path
    ctx.log(f"Copied the NVRAM to {copy.path}.")
