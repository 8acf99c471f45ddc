"""Every read about storage: libvirt's pools and volumes joined with who may use them.

Rules: staff see and act on everything. A user sees the pools staff opened to them (``PoolAccess``), and in
those pools the volumes that are theirs: volumes they created (``VolumeOwner``) and volumes only their own VMs
use. Anything else is a 404, the same as a missing object.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmNames, actor_id, is_authenticated, is_staff, vm_names, vm_uuids_visible
from kvmweb.accounts.selectors import Usage, usage_provider
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_get as hosts_host_get
from kvmweb.hosts.services import host_connection
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.handles import vm_handle
from kvmweb.media.selectors import iso_list as library_isos

from .handles import open_pool_names, pool_handle
from .models import PoolAccess, VolumeOwner


def host_get(*, actor: Actor, host_id: int) -> Host:
    if not is_authenticated(actor):
        raise NotFoundError("No such host.")
    return hosts_host_get(host_id)


@dataclass(frozen=True)
class PoolRow:
    info: hv.PoolInfo
    access: PoolAccess | None

    @property
    def name(self) -> str:
        return self.info.name


def pool_list(*, actor: Actor, host: Host) -> list[PoolRow]:
    """``virsh pool-list --all --details`` for staff; the opened, running pools for a user."""
    infos = hv.pool_list(host_connection(host))
    access = {a.pool: a for a in PoolAccess.objects.filter(host=host).prefetch_related("users")}
    if is_staff(actor):
        return [PoolRow(i, access.get(i.name)) for i in infos]
    allowed = open_pool_names(actor, host)
    return [PoolRow(i, access.get(i.name)) for i in infos if i.name in allowed and i.active]


def pool_get(*, actor: Actor, host: Host, name: str) -> hv.PoolInfo:
    """The facts of pool ``name`` (``virsh pool-info``) if ``actor`` may use it; NotFoundError otherwise."""
    return pool_handle(actor=actor, host=host, name=name).info()


@dataclass(frozen=True)
class VolumeRow:
    info: hv.VolumeInfo
    users: tuple[hv.DiskUse, ...]  # domains that have this file as a disk
    owner_name: str = ""  # the portal user it belongs to, if recorded
    vms: tuple[VirtualMachine, ...] = field(default=())  # portal records of ``users`` the reader may see
    names: VmNames = VmNames(())  # the names of ``users`` the reader may see, and how many others
    visible_users: tuple[hv.DiskUse, ...] = ()  # the ``users`` the reader may see (lists and the API name these)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def in_use(self) -> bool:
        return bool(self.users)

    @property
    def used_by_names(self) -> str:
        """Who uses it, as the reader may know: the VMs they may see by name, the others counted."""
        return str(self.names)

    @property
    def is_iso(self) -> bool:
        return self.info.name.lower().endswith(".iso")


@dataclass
class _Owners:
    """Who owns what on one host, and which VMs the reader may see, read in three queries."""

    volume_owner: dict[tuple[str, str], int]
    volume_owner_name: dict[tuple[str, str], str]
    vm_owner: dict[str, int | None]
    vm_record: dict[str, VirtualMachine]
    visible: set[str] | None  # the reader's visible VMs (None: staff, all)

    def row(self, info: hv.VolumeInfo, uses: tuple[hv.DiskUse, ...]) -> VolumeRow:
        """A volume with who uses it, named only as far as the reader may see those VMs."""
        seen = tuple(u for u in uses if self.visible is None or u.domain_uuid in self.visible)
        return VolumeRow(
            info=info, users=uses, owner_name=self.volume_owner_name.get((info.pool, info.name), ""),
            vms=tuple(self.vm_record[u.domain_uuid] for u in seen if u.domain_uuid in self.vm_record),
            names=vm_names(((u.domain_uuid, u.domain_name) for u in uses), self.visible), visible_users=seen,
        )


def _owners(host: Host, actor: Actor) -> _Owners:
    vols = VolumeOwner.objects.filter(host=host).select_related("owner")
    vms = VirtualMachine.objects.filter(host=host).select_related("owner")
    return _Owners(
        volume_owner={(v.pool, v.name): v.owner_id for v in vols},
        volume_owner_name={(v.pool, v.name): v.owner.get_username() for v in vols},
        vm_owner={str(v.uuid): v.owner_id for v in vms},
        vm_record={str(v.uuid): v for v in vms},
        visible=vm_uuids_visible(actor, host_id=host.pk),
    )


def _may_use(actor: Actor, row: VolumeRow, owners: _Owners) -> bool:
    if is_staff(actor):
        return True
    me = actor_id(actor)
    recorded = owners.volume_owner.get((row.info.pool, row.info.name))
    if recorded is not None:
        return recorded == me
    return bool(row.users) and all(owners.vm_owner.get(u.domain_uuid) == me for u in row.users)


def _rows(host: Host, pool: hv.Pool, owners: _Owners,
          users: dict[str, list[hv.DiskUse]] | None = None) -> list[VolumeRow]:
    if users is None:
        users = hv.domain_disk_users(host_connection(host))
    return [owners.row(info, tuple(users.get(info.path, ()))) for info in pool.volumes()]


def volume_list(*, actor: Actor, host: Host, pool: str) -> list[VolumeRow]:
    """``virsh vol-list --details`` with format and the VMs using each volume: the volumes ``actor`` may act on.

    One listing call, one XML read per volume, one bulk domain-stats call for the users, two queries."""
    handle = pool_handle(actor=actor, host=host, name=pool)
    if not handle.is_active():
        return []
    owners = _owners(host, actor)
    return [r for r in _rows(host, handle, owners) if _may_use(actor, r, owners)]


def iso_list(*, actor: Actor, host: Host) -> list[VolumeRow]:
    """ISO images (``*.iso``) in the running pools open to ``actor``: shared media anyone with access may insert."""
    owners = _owners(host, actor)
    users = hv.domain_disk_users(host_connection(host))
    result = []
    for row in pool_list(actor=actor, host=host):
        if not row.info.active:
            continue
        handle = hv.pool_lookup(host_connection(host), row.name)
        result += [r for r in _rows(host, handle, owners, users) if r.is_iso]
    return result


def volume_get(*, actor: Actor, host: Host, pool: str, name: str) -> VolumeRow:
    """One volume ``actor`` may act on, with who uses it; NotFoundError for missing and for not-yours alike."""
    handle = pool_handle(actor=actor, host=host, name=pool)
    try:
        info = handle.volume(name).info(pool=handle.name)
    except (hv.VolumeNotFound, hv.InvalidRequest):
        raise NotFoundError(f"No volume {name!r} in pool {pool}.") from None
    owners = _owners(host, actor)
    row = owners.row(info, tuple(hv.domain_disk_users(host_connection(host)).get(info.path, ())))
    if not _may_use(actor, row, owners):
        raise NotFoundError(f"No volume {name!r} in pool {pool}.")
    return row


# ----------------------------------------------------------------------------------------------- a VM's disks
@dataclass(frozen=True)
class DiskRow:
    disk: hv.DiskInfo
    volume: hv.VolumeInfo | None  # None: the file is in no pool (or an empty CD-ROM drive)

    @property
    def target(self) -> str:
        return self.disk.target

    @property
    def is_cdrom(self) -> bool:
        return self.disk.is_cdrom


@dataclass
class VmDisks:
    vm: VirtualMachine
    running: bool
    disks: list[DiskRow]
    boot: list[str]
    pools: list[PoolRow] = field(default_factory=list)  # where a new disk can go
    free_volumes: list[VolumeRow] = field(default_factory=list)  # existing volumes that can be attached
    isos: list[VolumeRow] = field(default_factory=list)  # *.iso volumes of the pools open to the user
    library: list[Any] = field(default_factory=list)  # complete media of the ISO library on the VM's host
    next_boot: list[hv.DiskInfo] = field(default_factory=list)  # in the definition, not yet in the running guest
    leaving: list[str] = field(default_factory=list)  # in the running guest, gone from its definition


def vm_disks(*, actor: Actor, vm: VirtualMachine, choices: bool = True) -> VmDisks:
    """A VM's disks and CD-ROM drives with their volumes, its boot order, and (``choices``) what may be attached.

    The caller has checked that ``actor`` may see ``vm``."""
    dom = vm_handle(vm)
    conn = host_connection(vm.host)
    disks = [d.info() for d in dom.document().disks]
    pools = {p.info.target_path.rstrip("/"): p for p in pool_list(actor=actor, host=vm.host)} if choices else {}
    rows = []
    for disk in disks:
        info = None
        if disk.source:
            volume = hv.volume_by_path(conn, disk.source)
            if volume is not None:
                info = volume.info()
        rows.append(DiskRow(disk=disk, volume=info))
    config_doc = dom.document(inactive=True)
    result = VmDisks(vm=vm, running=dom.state().is_active, disks=rows, boot=config_doc.boot_order)
    if result.running:  # what the definition already says and the guest gets at its next boot
        config, live = [d.info() for d in config_doc.disks], {d.target for d in disks}
        result.next_boot = [d for d in config if d.target not in live]
        result.leaving = sorted(live - {d.target for d in config})
    if choices:
        result.library = list(library_isos(actor=actor, host=vm.host, complete_only=True))
        result.pools = [p for p in pools.values() if p.info.active]
        owners = _owners(vm.host, actor)
        users = hv.domain_disk_users(conn)
        for pool in result.pools:
            handle = hv.pool_lookup(conn, pool.name)
            for row in _rows(vm.host, handle, owners, users):
                if row.is_iso:
                    result.isos.append(row)
                elif not row.in_use and _may_use(actor, row, owners):
                    result.free_volumes.append(row)
    return result


@usage_provider
def disk_usage(user: Actor, usage: Usage) -> None:
    """The quota's disk: the capacity (virtual size) of the volumes ``user`` owns, or their allocation where that is
    greater (snapshots inside a qcow2) — one pool lookup per pool plus
    one volume lookup and one XML read per volume. Volumes deleted outside the portal count 0."""
    pools: dict[tuple[int, str], list[str]] = {}
    hosts: dict[int, Host] = {}
    for row in VolumeOwner.objects.filter(owner_id=actor_id(user)).select_related("host"):
        pools.setdefault((row.host_id, row.pool), []).append(row.name)
        hosts[row.host_id] = row.host
    for (host_id, pool_name), names in pools.items():
        host = hosts[host_id]
        try:
            pool = hv.pool_lookup(host_connection(host), pool_name)
        except hv.NotFound:
            continue
        except hv.HypervisorError:
            if host.name not in usage.unavailable:
                usage.unavailable.append(host.name)
            continue
        for name in names:
            try:
                spec = pool.volume(name).spec()
                # a qcow2 holding internal snapshots can outgrow its virtual size: it counts what it holds then
                usage.disk_bytes += max(spec.capacity, spec.allocation)
            except (hv.NotFound, hv.InvalidRequest):
                continue
            except hv.HypervisorError:
                break
