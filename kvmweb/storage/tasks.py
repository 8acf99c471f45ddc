"""Celery side of storage: cloning a VM as a Job, with real progress (bytes copied), cancel and undo.

Each piece of work records its undo step BEFORE it is done (a new volume → delete it; the new definition →
undefine it; a paused source → resume it), so a failed, cancelled or killed clone leaves nothing half-made.
"""
from __future__ import annotations

import threading
import time
import uuid as uuid_mod
from typing import Any

from django.db import close_old_connections, connection

from kvmweb import hypervisor as hv
from kvmweb.core.errors import ConflictError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.runner import JobContext, job_task, undo_step
from kvmweb.machines.models import VirtualMachine

from .models import VolumeOwner
from .sizes import human

POLL = 0.5  # seconds between progress reads during a copy
BUSY_WAIT = 900  # seconds an undo waits for libvirt to finish writing a volume before deleting it


def _conn(host_id: int) -> hv.Connection:
    return host_connection(Host.objects.get(pk=host_id))


@undo_step("storage.delete_volume")
def _undo_volume(params: dict[str, Any]) -> str | None:
    """Delete a volume the clone made. A copy still running inside libvirtd (the worker died mid-copy) cannot be
    deleted until it ends: wait for it."""
    conn = _conn(params["host_id"])
    try:
        pool = hv.pool_lookup(conn, params["pool"])
        pool.refresh()
        volume = pool.volume(params["name"])
    except hv.NotFound:
        return "already gone"
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            volume.delete()
            break
        except hv.OperationInvalid:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL)  # "volume is still being allocated": libvirtd is still copying into it
    VolumeOwner.objects.filter(host_id=params["host_id"], pool=params["pool"], name=params["name"]).delete()
    return None


@undo_step("storage.resume_domain")
def _undo_pause(params: dict[str, Any]) -> str | None:
    try:
        dom = hv.lookup(_conn(params["host_id"]), params["uuid"])
        if dom.state() == hv.DomainState.PAUSED:
            hv.storage.resume(dom)
            return "resumed"
    except hv.DomainNotFound:
        return "the source is gone"
    return "it was not paused"


class _CopyWatcher:
    """Reports the bytes a running full copy has written, read from the new volume's allocation while libvirt
    copies (the copy call itself blocks until done)."""

    def __init__(self, ctx: JobContext, pool: hv.Pool, name: str, done_before: int, total: int) -> None:
        self.ctx, self.pool, self.name = ctx, pool, name
        self.done_before, self.total = done_before, max(total, 1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"clone-watch-{name}", daemon=True)

    def __enter__(self) -> _CopyWatcher:
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
    hv.storage.block_copy_start(source, target, new.path, spec.format)
    finished = False
    try:
        while True:
            progress = hv.storage.block_job_progress(source, target)
            if progress is None:
                raise ConflictError(f"The copy of {target} stopped unexpectedly.")
            ctx.progress(_percent(done + weight * progress.cur // max(progress.end, 1), total))
            if progress.ready:
                break
            ctx.check_cancelled()
            time.sleep(POLL / 5)
        hv.storage.block_job_abort(source, target)
        finished = True
    finally:
        if not finished:
            try:
                hv.storage.block_job_abort(source, target)
            except hv.HypervisorError:
                pass
    return new


def _percent(done: int, total: int) -> int:
    """Copy progress mapped into 5..95 % (the rest is checking and defining)."""
    return 5 + min(90, int(90 * done / max(total, 1)))


@job_task("storage.clone")
def clone_vm(ctx: JobContext) -> dict[str, Any] | None:
    p = ctx.params
    host_id, mode, name = p["host_id"], p["mode"], p["name"]
    conn = _conn(host_id)
    source = hv.lookup(conn, p["source_uuid"])
    ctx.progress(1, f"Cloning {source.name} → {name} ({mode}).")
    state = source.state()
    if state.is_active:
        if not p.get("pause") or mode == "linked":
            raise ConflictError(f"{source.name} is {state.label}: shut it off first.")
        ctx.undo("storage.resume_domain", f"resume {source.name}", host_id=host_id, uuid=source.uuid)
        if state != hv.DomainState.PAUSED:
            hv.storage.suspend(source)
            ctx.log(f"Paused {source.name} for the copy.")
    source_xml = source.xml(inactive=True)
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
            ctx.log(f"Copying {disk['target']}: {src.path} → {disk['new_name']} ({human(int(disk['allocation']))}).")
            spec = hv.VolumeSpec(name=disk["new_name"], capacity=src.spec().capacity, format=disk["format"])
            if state.is_active:
                new = _copy_running(ctx, source, disk["target"], pool, spec, done, int(disk["allocation"]), total)
            else:
                with _CopyWatcher(ctx, pool, disk["new_name"], done, total):
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
    xml = hv.clone_domain_xml(source_xml, name=name, uuid=new_uuid, disk_sources=new_paths, disk_formats=formats)
    # the same undo step as a VM creation: destroy if running, undefine, drop the record
    ctx.undo("machines.undefine", f"undefine {name}", uri=_conn(host_id).uri, uuid=new_uuid)
    dom = hv.define_xml(conn, xml)
    close_old_connections()
    VirtualMachine.objects.create(host_id=host_id, uuid=dom.uuid, name=dom.name, owner_id=p["owner_id"])
    ctx.check_cancelled()
    if state.is_active and state != hv.DomainState.PAUSED:
        hv.storage.resume(source)
        ctx.log(f"Resumed {source.name}.")
    ctx.progress(100, f"{name} is defined ({dom.uuid}).")
    return {"uuid": dom.uuid, "name": dom.name, "volumes": list(new_paths.values()), "mode": mode}
