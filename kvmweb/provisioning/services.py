"""Creating a VM from an install medium — ``virt-install`` parity, as a tracked Job.

``vm_create`` (in the request): permission → validation of every field against the host (all errors at once, as
field errors) → the domain is defined (shut off, owned by the actor) → a ``vm.create`` job is queued on commit.
``vm_create_run`` (in the Celery worker): creates the disk volume, sets autostart, starts the guest.
If anything fails — or the job is cancelled, or its worker dies — the recorded undo steps remove the new volume
and the domain, and the job log says so. Nothing is made from refused input: validation comes first.
"""
from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, require_login
from kvmweb.accounts.selectors import quota_reservation
from kvmweb.accounts.services import check_quota, quota_held
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobContext, undo_record
from kvmweb.jobs.services import job_create, job_queue_check
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_define, vm_recheck
from kvmweb.media.selectors import iso_queryset
from kvmweb.networks.selectors import attachable_networks
from kvmweb.storage.handles import pool_handle
from kvmweb.storage.services import volume_owner_record

from .devices import Platform, default_devices, platform_for
from .osinfo import GENERIC, OsVariant, os_variant

MiB = hv.MiB
MIN_MEMORY_MIB = 16
MAX_DISK_BYTES = 64 * 1024**4
DISK_FORMATS = ("qcow2", "raw")


@dataclass(frozen=True)
class NewDisk:
    pool: str
    name: str  # volume name: <vm>.<format>
    path: str
    size: int  # bytes
    format: str


@dataclass(frozen=True)
class CreateRequest:
    """A validated request: every field checked against the host."""

    host: Host
    name: str
    vcpus: int
    memory_mib: int
    iso_path: str | None
    disk: NewDisk | None
    variant: OsVariant
    network: str | None
    start: bool
    autostart: bool
    machine: str | None = None  # None: libvirt's default (i440fx); "q35" where virt-install would pick it
    video: str = "vga"


def build_document(req: CreateRequest, *, uuid: str, domain_type: str, owner: str = "") -> hv.DomainDocument:
    """The domain virt-install would define for ``req``: the machine type and devices its OS variant gets (see
    ``devices.py``: serial console, USB tablet, guest agent channel, virtio-rng, memballoon...); VNC without a
    port."""
    doc = hv.DomainDocument.new(
        name=req.name, uuid=uuid, domain_type=domain_type, memory_kib=req.memory_mib * 1024, vcpus=req.vcpus,
        boot=(), machine=req.machine,
        description=f"Created by kvmweb{' for ' + owner if owner else ''}; OS variant {req.variant.short_id}.",
    )
    taken: list[str] = []
    if req.disk:
        bus = req.variant.disk_bus
        disk = hv.Disk.new(target=hv.free_disk_target(bus, taken), bus=bus, source=req.disk.path,
                           format=req.disk.format, boot_order=2 if req.iso_path else 1)
        taken.append(disk.target or "")
        doc.add_device(disk)
    if req.iso_path:
        doc.add_device(hv.Disk.new(target=hv.free_disk_target("sata", taken), device="cdrom", bus="sata",
                                   source=req.iso_path, format="raw", shared_media=True, boot_order=1))
    if req.network:
        doc.add_device(hv.Interface.new(network=req.network, model=req.variant.nic_model))
    platform = Platform(domain_type=domain_type, machine=req.machine, video=req.video)
    for device in default_devices(req.variant, platform, display=hv.Graphics.vnc(listen="none")):
        doc.add_device(device)
    return doc


# -- validation ---------------------------------------------------------------------------------------------
class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            first = next(iter(self.fields.items()))
            raise ValidationError(f"{first[0]}: {first[1][0]}" + (" (and more)" if len(self.fields) > 1 else ""),
                                  fields=self.fields)


def _int(value: object, name: str, errors: _Errors) -> int | None:
    if isinstance(value, bool):
        errors.add(name, "must be a whole number")
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        errors.add(name, "must be a whole number")
        return None
    return number


def _size(value: object, name: str, default_unit: str, errors: _Errors) -> int | None:
    """'2048' (default unit), '2G', '512M' → bytes."""
    text = str(value).strip()
    if text.startswith(("-", "+")):
        errors.add(name, f"{text[:20]!r}: give a size above zero, without a sign")
        return None
    try:
        return hv.parse_size(text, field=name, default_unit=default_unit).amount
    except hv.InvalidRequest:
        errors.add(name, f"{text[:20]!r} is not a size above zero: use a number with an optional unit "
                         f"(M or G; a bare number means {default_unit}iB)")
        return None


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def vm_create_validate(
    *, actor: Actor, host: Host | int | str | None, name: object, vcpus: object = 1, memory: object = None,
    iso: object = None, disk_size: object = None, disk_format: object = "qcow2", disk_pool: object = "",
    os_variant_id: object = GENERIC, network: object = None, start: object = True, autostart: object = False,
) -> CreateRequest:
    """Check every field against the host; a ValidationError lists every problem by field. No side effects."""
    require_login(actor)
    errors = _Errors()
    # host
    host_obj: Host | None = None
    if isinstance(host, Host):
        host_obj = host if host.enabled else None
    elif host not in (None, ""):
        key = _int(host, "host", errors)
        host_obj = host_queryset().filter(pk=key).first() if key is not None else None
    if host_obj is None:
        errors.add("host", "choose one of the portal's hosts")
        errors.raise_if_any()
    assert host_obj is not None
    conn = host_connection(host_obj)
    facts = hv.host_facts(conn)
    # name
    vm_name = str(name or "").strip() if isinstance(name, str | int) else ""
    try:
        hv.validate_name(vm_name)
    except hv.InvalidRequest:
        errors.add("name", f"{hv.NAME_RULE}")
    else:
        if hv.domain_exists(conn, vm_name):
            errors.add("name", f"a virtual machine named {vm_name} already exists on {host_obj}")
    # OS variant
    variant_id = str(os_variant_id or GENERIC).strip()
    variant = os_variant(variant_id)
    if variant is None:
        errors.add("os_variant", f"unknown OS variant {variant_id[:60]!r}: pick one from the list, or 'generic'")
        variant = os_variant(GENERIC)
    assert variant is not None
    # CPUs and memory
    cpu_count = _int(vcpus, "vcpus", errors)
    if cpu_count is not None and not 1 <= cpu_count <= facts.cpus:
        errors.add("vcpus", f"between 1 and {facts.cpus} (the host's CPUs)")
    host_mib = facts.memory_kib // 1024
    memory_bytes = _size(memory if memory not in (None, "") else variant.recommended_memory_mib, "memory", "M", errors)
    memory_mib = (memory_bytes or 0) // MiB
    if memory_bytes is not None and not MIN_MEMORY_MIB <= memory_mib <= host_mib:
        errors.add("memory", f"between {MIN_MEMORY_MIB} MiB and {host_mib} MiB (the host's memory)")
    # install medium
    iso_path = None
    if iso not in (None, "", 0, "0"):
        key = _int(iso, "iso", errors)
        medium = iso_queryset(actor).filter(pk=key, host=host_obj, complete=True).first() if key is not None else None
        if medium is None:
            errors.add("iso", f"no such install medium in the ISO library of {host_obj}")
        else:
            iso_path = medium.path
    # network
    net_name = str(network).strip() if network not in (None, "") else None
    if net_name is not None:
        nets = {n.name: n for n in attachable_networks(actor=actor, host=host_obj)}
        if net_name not in nets:
            errors.add("network", f"no network named {net_name[:60]!r} open to you on {host_obj}")
        elif _flag(start) and not nets[net_name].active:
            errors.add("network", f"the network {net_name} is not running: start it first, or do not start the VM")
    # disk
    disk = None
    if disk_size not in (None, "", False):
        size = _size(disk_size, "disk_size", "G", errors)
        fmt = str(disk_format or "qcow2")
        if fmt not in DISK_FORMATS:
            errors.add("disk_format", "qcow2 or raw")
        if size is not None and not MiB <= size <= MAX_DISK_BYTES:
            errors.add("disk_size", "between 1 MiB and 64 TiB")
            size = None
        pool_name = str(disk_pool or "").strip() or _default_pool(actor, host_obj)
        if not pool_name:
            errors.add("disk_pool", "choose the storage pool for the new disk")
        elif size is not None and fmt in DISK_FORMATS and "name" not in errors.fields:
            disk = _disk_in_pool(actor, host_obj, pool_name, f"{vm_name}.{fmt}", size, fmt, errors)
    errors.raise_if_any()
    assert cpu_count is not None
    check_quota(actor, vms=1, vcpus=cpu_count, memory_mib=memory_mib, disk_bytes=disk.size if disk else 0,
                fields={"disk": "disk_size"})
    platform = platform_for(variant, domain_type=host_obj.effective_domain_type, facts=facts, conn=conn)
    return CreateRequest(host=host_obj, name=vm_name, vcpus=cpu_count, memory_mib=memory_mib, iso_path=iso_path,
                         disk=disk, variant=variant, network=net_name, start=_flag(start),
                         autostart=_flag(autostart), machine=platform.machine, video=platform.video)


def _default_pool(actor: Actor, host: Host) -> str:
    """``KVMWEB_DEFAULT_POOL`` when it exists on ``host`` and is open to ``actor`` (no pool named: the disk goes
    there, as virt-install puts it in its default pool), else ''."""
    try:
        pool_handle(actor=actor, host=host, name=settings.KVMWEB_DEFAULT_POOL)
    except (NotFoundError, hv.HypervisorError):
        return ""
    return str(settings.KVMWEB_DEFAULT_POOL)


def _disk_in_pool(actor: Actor, host: Host, pool_name: str, vol_name: str, size: int, fmt: str,
                  errors: _Errors) -> NewDisk | None:
    try:
        pool = pool_handle(actor=actor, host=host, name=pool_name)  # staff: any pool; users: pools opened to them
        info = pool.info()
    except (NotFoundError, hv.InvalidRequest):
        errors.add("disk_pool", f"no storage pool named {pool_name[:60]!r} open to you on {host}")
        return None
    if not info.active:
        errors.add("disk_pool", f"the pool {pool_name} is not running")
        return None
    if size > info.available:
        errors.add("disk_size",
                   f"the pool {pool_name} has {hv.human(info.available)} free; the disk needs {hv.human(size)}")
        return None
    try:
        taken = pool.has_volume(vol_name)
    except hv.InvalidRequest as exc:
        errors.add("name", f"the disk would be named {vol_name}, which is refused: {exc.detail}")
        return None
    if taken:
        errors.add("name", f"the pool {pool_name} already has a volume {vol_name}")
        return None
    return NewDisk(pool=pool_name, name=vol_name, path=pool.volume_path(vol_name), size=size, format=fmt)


# -- the service ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateResult:
    vm: VirtualMachine
    job: Job

    @property
    def message(self) -> str:
        return f"{self.vm.name} is being created (job #{self.job.pk}): watch its progress below."


def vm_create(*, actor: Actor, **fields: Any) -> CreateResult:
    """Validate, define the domain (shut off) and queue the ``vm.create`` job that makes its disk and starts it."""
    req = vm_create_validate(actor=actor, **fields)
    job_queue_check()  # a job that cannot be queued: refused before the domain is defined (503)
    host = req.host
    doc = build_document(req, uuid=str(uuid_mod.uuid4()), domain_type=host.effective_domain_type,
                         owner=actor.get_username())
    disk_bytes = req.disk.size if req.disk else 0
    params: dict[str, Any] = {
        "host_id": host.pk, "uuid": doc.uuid, "name": req.name, "start": req.start, "autostart": req.autostart,
        "disk": vars(req.disk) if req.disk else None,
        "quota": quota_reservation(disk_bytes=disk_bytes),  # the disk counts from here; the VM once defined
    }
    # Checked again under the quota lock, with the definition: requests racing each other cannot both pass.
    with quota_held(actor, vms=1, vcpus=req.vcpus, memory_mib=req.memory_mib, disk_bytes=disk_bytes,
                    fields={"disk": "disk_size"}):
        vm = vm_define(actor=actor, host=host, doc=doc)
        try:
            job = job_create(
                actor=actor, kind="vm.create", title=f"Create VM {req.name}", target_type="vm",
                target=str(vm.uuid), host=host, params=params,
                cleanup=[undo_record("machines.undefine", f"undefined the new domain {req.name}", uri=host.uri,
                                     uuid=str(vm.uuid))],
            )
        except Exception:
            hv.domain_lookup(host_connection(host), str(vm.uuid)).undefine()
            raise
    return CreateResult(vm=vm, job=job)


# -- the job (runs in the Celery worker) ----------------------------------------------------------------------
def vm_create_run(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    # still allowed to set this VM up (its owner or staff; an account disabled since: the job fails and is undone)
    vm_recheck(actor_id=ctx.job.actor_id, uuid=p["uuid"], action=VmAction.MANAGE, what="set up")
    host = Host.objects.get(pk=p["host_id"])
    conn = host_connection(host)
    ctx.progress(5, f"Creating {p['name']} on {host}.")
    dom = hv.domain_lookup(conn, p["uuid"])
    result: dict[str, Any] = {"uuid": p["uuid"]}
    disk = p.get("disk")
    if disk:
        pool = hv.pool_lookup(conn, disk["pool"])
        if pool.has_volume(disk["name"]):
            raise ConflictError(f"The pool {disk['pool']} already has a volume {disk['name']} (made after the "
                                "request was checked); it is not ours to touch.")
        undo = {"host_id": host.pk, "pool": disk["pool"], "name": disk["name"]}
        ctx.undo("storage.delete_volume", f"deleted the new volume {disk['path']}", **undo)
        ctx.progress(10, f"Creating the disk {disk['path']} ({hv.human(disk['size'])}, {disk['format']}).")
        try:
            volume = pool.create_volume(hv.VolumeSpec(name=disk["name"], capacity=disk["size"],
                                                      format=disk["format"]))
        except hv.AlreadyExists:
            ctx.forget_undo("storage.delete_volume", **undo)  # someone else's volume: never delete it
            raise
        if volume.path != disk["path"]:
            raise ValidationError(f"The pool put the disk at {volume.path}, not {disk['path']}.")
        owner_id = VirtualMachine.objects.filter(uuid=p["uuid"]).values_list("owner_id", flat=True).first()
        if owner_id is not None:  # the disk is the VM owner's: it counts in their disk quota
            volume_owner_record(host=host, pool=disk["pool"], name=disk["name"], owner_id=owner_id)
        result["disk"] = volume.path
        ctx.progress(60, "Disk created.")
    ctx.check_cancelled()
    if p.get("autostart"):
        dom.set_autostart(True)
        ctx.progress(70, "Autostart is on.")
    if p.get("start"):
        ctx.progress(75, "Starting the VM.")
        dom.start()
        ctx.progress(95, "The VM is running.")
    return result
