"""Creating a VM — from an install medium (``virt-install --cdrom``) or from a disk image or template
(``virt-install --import --cloud-init``) — as a tracked Job.

``vm_create`` (in the request): permission → validation of every field against the host (all errors at once, as
field errors) → the domain is defined (shut off, owned by the actor) → a ``vm.create`` job is queued on commit.
``vm_create_run`` (in the Celery worker): creates the disk volume, sets autostart, starts the guest.
If anything fails — or the job is cancelled, or its worker dies — the recorded undo steps remove the new volume
and the domain, and the job log says so. Nothing is made from refused input: validation comes first.

From an image (``image=``) or a template (``template=``: an image, a flavor and defaults): the disk is a linked
clone (a qcow2 overlay on the library's image: instant) or a full copy, grown to the flavor's or the asked size
(never below the image's); with cloud-init, a NoCloud seed (``cloudinit.py``) becomes a small volume beside the disk,
attached as a SCSI CD-ROM and named in the domain's metadata so that deleting the VM deletes it too. Such VMs always
get the guest-agent channel, so the VM page reads the guest's hostname and addresses back.
"""
from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from django.conf import settings

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, require_login
from kvmweb.accounts.selectors import quota_reservation
from kvmweb.accounts.services import check_quota, quota_held
from kvmweb.core.errors import ConflictError, FieldErrors, NotFoundError, ValidationError
from kvmweb.fleet.placement import Need, place
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.runner import JobContext, undo_record
from kvmweb.jobs.services import job_create, job_queue_check
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_define, vm_recheck
from kvmweb.accounts.selectors import ssh_keys_of
from kvmweb.media.models import IsoImage
from kvmweb.media.selectors import image_get, iso_queryset
from kvmweb.media.services import HostFile, host_file
from kvmweb.networks.selectors import attachable_networks
from kvmweb.storage.handles import pool_handle
from kvmweb.storage.services import volume_owner_record

from . import cloudinit
from .devices import Platform, default_devices, platform_for
from .fields import flag_field, int_field, size_field
from .models import Flavor, Template
from .osinfo import GENERIC, OsVariant, os_variant
from .selectors import flavor_get, template_get

ANY_HOST = "any"  # the host field's value that lets placement choose

MiB = hv.MiB
MIN_MEMORY_MIB = 16
MAX_DISK_BYTES = 64 * 1024**4
DISK_FORMATS = ("qcow2", "raw")
CLONE_MODES = ("linked", "copy")
DKB_CMDLINE = "root=/dev/vda ro console=ttyS0"  # a direct-kernel-boot image without its own kernel arguments


@dataclass(frozen=True)
class NewDisk:
    pool: str
    name: str  # volume name: <vm>.<format>
    path: str
    size: int  # bytes
    format: str
    image: str | None = None  # made from this library image (its path) ...
    image_format: str | None = None
    linked: bool = False  # ... as a qcow2 overlay on it (else a full copy)


@dataclass(frozen=True)
class SeedPlan:
    """The cloud-init seed of a new VM: rendered now, written as a volume beside its disk by the job."""

    pool: str
    name: str
    path: str
    user_data: str
    meta_data: str
    network_config: str | None
    hostname: str


@dataclass(frozen=True)
class KernelBoot:
    kernel: str
    initrd: str
    cmdline: str


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
    seed: SeedPlan | None = None
    kernel_boot: KernelBoot | None = None
    source: str = ""  # "template NAME" / "image NAME" for the job's log; "" for an install medium
    placement: str = ""  # why placement chose the host ("any host"), for the job's log

    @property
    def from_image(self) -> bool:
        return bool(self.disk and self.disk.image)


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
        # a cloud image is virtio-capable by convention: virtio unless its OS variant says otherwise
        bus = "virtio" if req.from_image and req.variant.short_id == GENERIC else req.variant.disk_bus
        disk = hv.Disk.new(target=hv.free_disk_target(bus, taken), bus=bus, source=req.disk.path,
                           format=req.disk.format, boot_order=2 if req.iso_path else 1)
        taken.append(disk.target or "")
        doc.add_device(disk)
    if req.iso_path:
        doc.add_device(hv.Disk.new(target=hv.free_disk_target("sata", taken), device="cdrom", bus="sata",
                                   source=req.iso_path, format="raw", shared_media=True, boot_order=1))
    if req.seed:
        # SCSI on virtio-scsi: cloud kernels have no AHCI, so a SATA CD-ROM would be invisible to them
        doc.add_device(hv.Controller.scsi())
        doc.add_device(hv.Disk.new(target=hv.free_disk_target("scsi", taken), device="cdrom", bus="scsi",
                                   source=req.seed.path, format="raw"))
        doc.seed_path = req.seed.path
    if req.kernel_boot:
        doc.kernel, doc.initrd = req.kernel_boot.kernel, req.kernel_boot.initrd
        doc.cmdline = req.kernel_boot.cmdline
    if req.network:
        model = "virtio" if req.from_image and req.variant.short_id == GENERIC else req.variant.nic_model
        doc.add_device(hv.Interface.new(network=req.network, model=model))
    platform = Platform(domain_type=domain_type, machine=req.machine, video=req.video)
    for device in default_devices(req.variant, platform, display=hv.Graphics.vnc(listen="none")):
        doc.add_device(device)
    if req.from_image and domain_type in ("kvm", "qemu") and not any(
            c.target_name == hv.GUEST_AGENT_CHANNEL for c in doc.devices_of(hv.Channel)):
        doc.add_device(hv.Channel.guest_agent())  # the portal reads the guest's hostname and addresses back
    return doc


# -- validation ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    """Where a VM from an image starts: the library image, and what its template (if any) says."""

    image: IsoImage
    template: Template | None
    flavor: Flavor | None
    variant_id: str
    network: str | None
    cloud_init: bool
    clone_mode: str

    @property
    def label(self) -> str:
        return f"template {self.template.name}" if self.template else f"image {self.image.name}"


def _image_source(actor: Actor, template: object, image: object, flavor: object, clone_mode: object,
                  errors: FieldErrors) -> _Source | None:
    """The template or image (and flavor) asked for, as ``actor`` may use them; None for an install-medium VM."""
    chosen_flavor: Flavor | None = None
    if flavor not in (None, "", 0, "0"):
        try:
            chosen_flavor = flavor_get(flavor)  # type: ignore[arg-type]
        except NotFoundError:
            errors.add("flavor", "no such flavor")
    tpl: Template | None = None
    img: IsoImage | None = None
    if template not in (None, "", 0, "0"):
        try:
            tpl = template_get(actor=actor, pk=template)  # type: ignore[arg-type]
            img = tpl.image
        except NotFoundError:
            errors.add("template", "no such template open to you")
            return None
    elif image not in (None, "", 0, "0"):
        try:
            img = image_get(actor=actor, pk=image)  # type: ignore[arg-type]
        except NotFoundError:
            errors.add("image", "no such disk image open to you")
            return None
    if img is None:
        if chosen_flavor is not None:
            errors.add("flavor", "flavors are for VMs made from a template or an image")
        return None
    if not img.complete:
        errors.add("template" if tpl else "image", f"the image {img.name} is not complete yet")
    mode = str(clone_mode or (tpl.clone_mode if tpl else "linked"))
    if mode not in CLONE_MODES:
        errors.add("clone_mode", "linked or copy")
        mode = "linked"
    return _Source(image=img, template=tpl, flavor=chosen_flavor or (tpl.flavor if tpl else None),
                   variant_id=(tpl.os_variant if tpl else "") or img.os_variant or GENERIC,
                   network=(tpl.network or None) if tpl else None, cloud_init=tpl.cloud_init if tpl else False,
                   clone_mode=mode)


def _hostname_from(name: str) -> str:
    """A VM name as a host name (letters, digits and '-'; lower case)."""
    label = "".join(c if c.isalnum() and c.isascii() else "-" for c in name.lower()).strip("-")
    return label[:63].strip("-") or "vm"


def _cloud_init_for(actor: Actor, vm_name: str, given: object, errors: FieldErrors) -> cloudinit.CloudInit | None:
    """The cloud-init inputs checked (``given``: hostname, user, ssh_keys — ids of the person's profile keys or
    public-key lines —, password, user_data; missing ones default to the VM's name, the person's user name and all
    their profile keys)."""
    if given is not None and not isinstance(given, dict):
        errors.add("cloud_init", "an object with hostname, user, ssh_keys, password, user_data")
        return None
    data: dict[str, Any] = dict(given or {})
    unknown = sorted(set(data) - {"hostname", "user", "ssh_keys", "password", "user_data"})
    if unknown:
        errors.add("cloud_init", f"unknown field(s): {', '.join(unknown)[:100]}")
    profile = {str(k.pk): k.public_key for k in ssh_keys_of(actor)}
    keys: list[str] = []
    wanted = data.get("ssh_keys")
    if wanted is None:
        keys = list(profile.values())
    elif not isinstance(wanted, list | tuple):
        errors.add("cloud_init.ssh_keys", "a list of your profile's key ids (or public-key lines)")
    else:
        for position, item in enumerate(wanted, 1):
            if isinstance(item, int) and not isinstance(item, bool) or str(item).isdigit():
                if str(item) not in profile:
                    errors.add("cloud_init.ssh_keys", f"key {position}: no SSH key #{item} in your profile")
                else:
                    keys.append(profile[str(item)])
            else:
                keys.append(str(item))
    user = data.get("user") or _default_user(actor)
    try:
        return cloudinit.cloud_init_validate(
            hostname=data.get("hostname") or _hostname_from(vm_name), user=user, ssh_keys=keys,
            password=data.get("password") or None, user_data=data.get("user_data") or "")
    except ValidationError as exc:
        for field, messages in (exc.fields or {"cloud_init": [exc.detail]}).items():
            for message in messages:
                errors.add(field, message)
        return None


def _default_user(actor: Actor) -> str:
    """The person's user name when it is a valid POSIX one, else ``user``."""
    name = str(getattr(actor, "get_username", lambda: "")()).lower()
    return name if cloudinit.USER_RE.fullmatch(name) and name not in cloudinit.RESERVED_USERS else "user"


def vm_create_validate(
    *, actor: Actor, host: Host | int | str | None = None, name: object, vcpus: object = None, memory: object = None,
    iso: object = None, disk_size: object = None, disk_format: object = "qcow2", disk_pool: object = "",
    os_variant_id: object = None, network: object = None, start: object = True, autostart: object = False,
    template: object = None, image: object = None, flavor: object = None, clone_mode: object = None,
    cloud_init: object = None,
) -> CreateRequest:
    """Check every field against the host; a ValidationError lists every problem by field. No side effects.

    With ``template`` or ``image`` the VM starts from a library image (``iso`` and ``disk_format`` do not apply);
    ``flavor`` (or the template's) gives the sizes that ``vcpus``/``memory``/``disk_size`` do not; ``cloud_init``
    (a dict, or the template's default) gives the guest its host name, user and SSH keys."""
    require_login(actor)
    errors = FieldErrors()
    source = _image_source(actor, template, image, flavor, clone_mode, errors)
    if source is not None:
        if iso not in (None, "", 0, "0"):
            errors.add("iso", "a VM made from a template or an image has no install medium")
        if host in (None, ""):
            host = source.image.host
        elif str(getattr(host, "pk", host)) != str(source.image.host_id):
            errors.add("host", f"the image {source.image.name} is on {source.image.host}: create the VM there")
        sizes = source.flavor
        if vcpus in (None, "") and sizes:
            vcpus = sizes.vcpus
        if memory in (None, "") and sizes:
            memory = f"{sizes.memory_mib}M"
        if disk_size in (None, "", False):
            disk_size = f"{sizes.disk_bytes}B" if sizes else f"{max(source.image.virtual_size, MiB)}B"
        if os_variant_id in (None, ""):
            os_variant_id = source.variant_id
        if network is None:
            network = source.network
        disk_format = "qcow2"
    if vcpus in (None, ""):
        vcpus = 1
    # host: "any" (or none named while there are several) → placement (kvmweb.fleet)
    placed = ""
    if source is None and (host == ANY_HOST or (host in (None, "") and host_queryset().count() > 1)):
        host, placed = _placed_host(actor, memory=memory, vcpus=vcpus, disk_pool=disk_pool, network=network,
                                    iso=iso, os_variant_id=os_variant_id, errors=errors)
        errors.raise_if_any()
    host_obj: Host | None = None
    if isinstance(host, Host):
        host_obj = host if host.enabled else None
    elif host not in (None, ""):
        key = int_field(host, "host", errors)
        host_obj = host_queryset().filter(pk=key).first() if key is not None else None
    if host_obj is None:
        errors.add("host", "choose one of the portal's hosts")
        errors.raise_if_any()
    assert host_obj is not None
    if host_obj.maintenance:
        errors.add("host", f"{host_obj} is in maintenance: it gets no new VMs; choose another host, or any host")
        errors.raise_if_any()
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
    cpu_count = int_field(vcpus, "vcpus", errors)
    if cpu_count is not None and not 1 <= cpu_count <= facts.cpus:
        errors.add("vcpus", f"between 1 and {facts.cpus} (the host's CPUs)")
    host_mib = facts.memory_kib // 1024
    memory_bytes = size_field(memory if memory not in (None, "") else variant.recommended_memory_mib, "memory", "M",
                              errors)
    memory_mib = (memory_bytes or 0) // MiB
    if memory_bytes is not None and not MIN_MEMORY_MIB <= memory_mib <= host_mib:
        errors.add("memory", f"between {MIN_MEMORY_MIB} MiB and {host_mib} MiB (the host's memory)")
    # install medium
    iso_path = None
    if iso not in (None, "", 0, "0"):
        key = int_field(iso, "iso", errors)
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
        elif flag_field(start) and not nets[net_name].active:
            errors.add("network", f"the network {net_name} is not running: start it first, or do not start the VM")
    # disk
    disk = None
    image_file = _image_on_host(source.image, errors) if source is not None else None
    if source is not None and image_file is None:
        disk_size = None  # nothing to start from: the image's error says why
    elif source is not None and source.clone_mode == "copy" and image_file is not None and not image_file.pool:
        errors.add("clone_mode", f"the image {source.image.name} is a file outside the host's storage pools: a "
                                 "full copy needs it in a pool; make a linked clone")
    if disk_size not in (None, "", False):
        size = size_field(disk_size, "disk_size", "G", errors)
        fmt = str(disk_format or "qcow2")
        if fmt not in DISK_FORMATS:
            errors.add("disk_format", "qcow2 or raw")
        if size is not None and not MiB <= size <= MAX_DISK_BYTES:
            errors.add("disk_size", "between 1 MiB and 64 TiB")
            size = None
        if size is not None and source is not None and size < source.image.virtual_size:
            errors.add("disk_size", f"at least {hv.human(source.image.virtual_size)}, the size of the image "
                                    f"{source.image.name} (a disk is never shrunk)")
            size = None
        pool_name = str(disk_pool or "").strip() or _default_pool(actor, host_obj)
        if not pool_name:
            errors.add("disk_pool", "choose the storage pool for the new disk")
        elif size is not None and fmt in DISK_FORMATS and "name" not in errors.fields:
            # a linked clone takes room only as the guest writes; a copy takes the image's allocation at once
            room = MiB if source is not None and source.clone_mode == "linked" else size
            disk = _disk_in_pool(actor, host_obj, pool_name, f"{vm_name}.{fmt}", size, fmt, errors, room=room)
    seed: SeedPlan | None = None
    if source is not None and (cloud_init is not None or source.cloud_init):
        ci = _cloud_init_for(actor, vm_name, cloud_init, errors)
        if ci is not None and disk is not None:
            seed = _seed_in_pool(actor, host_obj, disk.pool, vm_name, ci, errors)
    errors.raise_if_any()
    assert cpu_count is not None
    check_quota(actor, vms=1, vcpus=cpu_count, memory_mib=memory_mib, disk_bytes=disk.size if disk else 0,
                fields={"disk": "disk_size"})
    platform = platform_for(variant, domain_type=host_obj.effective_domain_type, facts=facts, conn=conn)
    kernel_boot = None
    if source is not None:
        assert disk is not None
        img = source.image
        disk = NewDisk(pool=disk.pool, name=disk.name, path=disk.path, size=disk.size, format="qcow2",
                       image=img.path, image_format=img.format or "qcow2", linked=source.clone_mode == "linked")
        if img.kernel:
            kernel_boot = KernelBoot(kernel=img.kernel, initrd=img.initrd, cmdline=img.cmdline or DKB_CMDLINE)
    return CreateRequest(host=host_obj, name=vm_name, vcpus=cpu_count, memory_mib=memory_mib, iso_path=iso_path,
                         disk=disk, variant=variant, network=net_name, start=flag_field(start),
                         autostart=flag_field(autostart), machine=platform.machine, video=platform.video, seed=seed,
                         kernel_boot=kernel_boot, source=source.label if source else "", placement=placed)


def _placed_host(actor: Actor, *, memory: object, vcpus: object, disk_pool: object, network: object, iso: object,
                 os_variant_id: object, errors: FieldErrors) -> tuple[Host | None, str]:
    """The host placement picks for what the request asks (sizes, pool, network, install medium — a medium of the
    library lives on one host, so only that host is a candidate then), and why; None (an error on ``host``) when
    none fits."""
    rough = FieldErrors()  # the sizes' own errors are reported once, by the checks that follow
    variant = os_variant(str(os_variant_id or GENERIC).strip()) or os_variant(GENERIC)
    assert variant is not None
    memory_bytes = size_field(memory if memory not in (None, "") else variant.recommended_memory_mib, "memory", "M",
                              rough) or 0
    cpus = int_field(vcpus, "vcpus", rough) or 1
    hosts = list(host_queryset())
    iso_path = ""
    if iso not in (None, "", 0, "0") and str(iso).isdigit():
        medium = iso_queryset(actor).filter(pk=int(str(iso)), complete=True).select_related("host").first()
        if medium is not None:
            hosts, iso_path = [medium.host], medium.path
    need = Need(memory_kib=memory_bytes // 1024, vcpus=cpus, pool=str(disk_pool or "").strip(),
                network=str(network or "").strip(), iso=iso_path)
    placement = place(need=need, hosts=hosts)
    if placement.host is None:
        errors.add("host", placement.reason)
    return placement.host, placement.reason


def _image_on_host(image: IsoImage, errors: FieldErrors) -> HostFile | None:
    """The image's file, when it and its kernel and initrd are still on its host (a file deleted behind the portal's
    back is refused now, not when the job runs)."""
    found: HostFile | None = None
    missing = False
    for path in filter(None, (image.path, image.kernel, image.initrd)):
        try:
            file = host_file(image.host, path)
        except ValidationError:
            missing = True
            errors.add("template", f"{path} of the image {image.name} is missing on {image.host}: ask staff to fix "
                                   "the image library")
            continue
        if path == image.path:
            found = file
    return None if missing else found


def _seed_in_pool(actor: Actor, host: Host, pool_name: str, vm_name: str, ci: cloudinit.CloudInit,
                  errors: FieldErrors) -> SeedPlan | None:
    seed = cloudinit.render(ci)
    name = f"{vm_name}-cidata.iso"
    pool = pool_handle(actor=actor, host=host, name=pool_name)
    if pool.has_volume(name):
        errors.add("name", f"the pool {pool_name} already has a volume {name}")
        return None
    return SeedPlan(pool=pool_name, name=name, path=pool.volume_path(name), user_data=seed.user_data,
                    meta_data=seed.meta_data, network_config=seed.network_config, hostname=ci.hostname)


def _default_pool(actor: Actor, host: Host) -> str:
    """``KVMWEB_DEFAULT_POOL`` when it exists on ``host`` and is open to ``actor`` (no pool named: the disk goes
    there, as virt-install puts it in its default pool), else ''."""
    try:
        pool_handle(actor=actor, host=host, name=settings.KVMWEB_DEFAULT_POOL)
    except (NotFoundError, hv.HypervisorError):
        return ""
    return str(settings.KVMWEB_DEFAULT_POOL)


def _disk_in_pool(actor: Actor, host: Host, pool_name: str, vol_name: str, size: int, fmt: str,
                  errors: FieldErrors, *, room: int | None = None) -> NewDisk | None:
    try:
        pool = pool_handle(actor=actor, host=host, name=pool_name)  # staff: any pool; users: pools opened to them
        info = pool.info()
    except (NotFoundError, hv.InvalidRequest):
        errors.add("disk_pool", f"no storage pool named {pool_name[:60]!r} open to you on {host}")
        return None
    if not info.active:
        errors.add("disk_pool", f"the pool {pool_name} is not running")
        return None
    if (size if room is None else room) > info.available:
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
        "disk": vars(req.disk) if req.disk else None, "source": req.source,
        "seed": vars(req.seed) if req.seed else None,
        "quota": quota_reservation(disk_bytes=disk_bytes),  # the disk counts from here; the VM once defined
        "placement": req.placement,
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
    if p.get("placement"):
        ctx.log(p["placement"])
    ctx.progress(5, f"Creating {p['name']} on {host}" + (f" from the {p['source']}." if p.get("source") else "."))
    dom = hv.domain_lookup(conn, p["uuid"])
    result: dict[str, Any] = {"uuid": p["uuid"]}
    disk = p.get("disk")
    owner_id = VirtualMachine.objects.filter(uuid=p["uuid"]).values_list("owner_id", flat=True).first()
    if disk:
        volume = _new_volume(ctx, conn, host, disk["pool"], disk["name"], lambda pool: _make_disk(ctx, pool, disk))
        if volume.path != disk["path"]:
            raise ValidationError(f"The pool put the disk at {volume.path}, not {disk['path']}.")
        if owner_id is not None:  # the disk is the VM owner's: it counts in their disk quota
            volume_owner_record(host=host, pool=disk["pool"], name=disk["name"], owner_id=owner_id)
        result["disk"] = volume.path
        ctx.progress(60, "Disk created.")
    seed = p.get("seed")
    if seed:
        ctx.check_cancelled()
        ctx.progress(62, f"Writing the cloud-init seed {seed['path']} (host name {seed['hostname']}).")
        data = cloudinit.seed_iso(cloudinit.Seed(user_data=seed["user_data"], meta_data=seed["meta_data"],
                                                 network_config=seed["network_config"]))
        volume = _new_volume(ctx, conn, host, seed["pool"], seed["name"],
                             lambda pool: pool.create_file_volume(seed["name"], data))
        if owner_id is not None:
            volume_owner_record(host=host, pool=seed["pool"], name=seed["name"], owner_id=owner_id)
        result["seed"] = volume.path
        ctx.progress(65, "cloud-init seed written.")
    ctx.check_cancelled()
    if p.get("autostart"):
        dom.set_autostart(True)
        ctx.progress(70, "Autostart is on.")
    if p.get("start"):
        ctx.progress(75, "Starting the VM.")
        dom.start()
        ctx.progress(95, "The VM is running.")
    return result


def _new_volume(ctx: JobContext, conn: hv.Connection, host: Host, pool_name: str, name: str,
                make: Callable[[hv.Pool], hv.Volume]) -> hv.Volume:
    """Make a volume of the new VM with ``make``, recording its undo first (a volume that appeared since the
    request was checked is someone else's: refused, never deleted)."""
    pool = hv.pool_lookup(conn, pool_name)
    if pool.has_volume(name):
        raise ConflictError(f"The pool {pool_name} already has a volume {name} (made after the request was "
                            "checked); it is not ours to touch.")
    undo = {"host_id": host.pk, "pool": pool_name, "name": name}
    ctx.undo("storage.delete_volume", f"deleted the new volume {pool.volume_path(name)}", **undo)
    try:
        return make(pool)
    except hv.AlreadyExists:
        ctx.forget_undo("storage.delete_volume", **undo)  # someone else's volume: never delete it
        raise


def _make_disk(ctx: JobContext, pool: hv.Pool, disk: dict[str, Any]) -> hv.Volume:
    """The new disk: empty, a linked clone of a library image (a qcow2 overlay: instant), or a full copy of one
    grown to the asked size."""
    size = hv.human(disk["size"])
    if not disk.get("image"):
        ctx.progress(10, f"Creating the disk {disk['path']} ({size}, {disk['format']}).")
        return pool.create_volume(hv.VolumeSpec(name=disk["name"], capacity=disk["size"], format=disk["format"]))
    if disk.get("linked"):  # the image's format is given, never probed; it may be a file outside every pool
        ctx.progress(10, f"Creating {disk['path']} as a linked clone of {disk['image']} ({size}).")
        return pool.create_volume(hv.VolumeSpec(name=disk["name"], capacity=disk["size"], format="qcow2",
                                                backing_path=disk["image"], backing_format=disk["image_format"]))
    source = hv.volume_by_path(pool.conn, disk["image"])
    if source is None:
        raise NotFoundError(f"The image {disk['image']} is no longer in a storage pool of the host.")
    ctx.progress(10, f"Copying {disk['image']} to {disk['path']}.")
    volume = pool.clone_volume(source, hv.VolumeSpec(name=disk["name"], capacity=source.spec().capacity,
                                                     format="qcow2"))
    if disk["size"] > volume.spec().capacity:
        ctx.progress(55, f"Growing {disk['path']} to {size}.")
        volume.resize(disk["size"])
    return volume
