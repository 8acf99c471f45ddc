"""Reads about a user's quota: the limits (their ``Quota`` row, else the ``KVMWEB_QUOTA_*`` defaults) and the usage,
read from libvirt.

Usage, and what it costs:
- VMs: the ``VirtualMachine`` rows the user owns, on every host (one query).
- vCPUs and memory: per host with such VMs, one bulk listing (``getAllDomainStats``) and one bulk size read
  (``domainListGetStats``) for the user's domains — two libvirt calls per host, however many VMs. vCPUs are the
  ones libvirt reports for the domain, memory its maximum (what it may take). A host that does not answer still
  counts its VMs, with 0 vCPUs and 0 memory, and is named in ``unavailable``.
- Disk: the capacity (virtual size) of the volumes the user owns (``storage.VolumeOwner`` rows: volumes they
  created, uploaded or cloned, and the disks of VMs they created) — one pool lookup per pool plus one volume lookup
  and one XML read per volume. Volumes deleted outside the portal count 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.machines.models import VirtualMachine
from kvmweb.storage.models import VolumeOwner

from .models import Quota

Actor = AbstractBaseUser | AnonymousUser
GiB = 1024**3

_DEFAULTS = {
    "max_vms": "KVMWEB_QUOTA_VMS", "max_vcpus": "KVMWEB_QUOTA_VCPUS",
    "max_memory_mib": "KVMWEB_QUOTA_MEMORY_MIB", "max_disk_gib": "KVMWEB_QUOTA_DISK_GIB",
}


@dataclass(frozen=True)
class Limits:
    """None = no limit."""

    vms: int | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None

    @property
    def unlimited(self) -> bool:
        return all(v is None for v in (self.vms, self.vcpus, self.memory_mib, self.disk_gib))


@dataclass
class Usage:
    vms: int = 0
    vcpus: int = 0
    memory_mib: int = 0
    disk_bytes: int = 0
    unavailable: list[str] = field(default_factory=list)  # hosts that did not answer: their VMs count 0 vCPUs/memory

    @property
    def disk_gib_used(self) -> int:
        """Whole GiB, rounded up."""
        return -(-self.disk_bytes // GiB)


def _setting(name: str) -> int | None:
    value = getattr(settings, name, "")
    if value in (None, ""):
        return None
    number = int(str(value).strip())
    return number if number >= 0 else None


def quota_limits(user: Actor) -> Limits:
    """The limits of ``user``: nothing for staff (never limited); their Quota row; else the settings' defaults."""
    if getattr(user, "is_staff", False):
        return Limits()
    row = Quota.objects.filter(user_id=getattr(user, "pk", None)).first()
    if row is not None:
        return Limits(vms=row.max_vms, vcpus=row.max_vcpus, memory_mib=row.max_memory_mib, disk_gib=row.max_disk_gib)
    values = {key: _setting(name) for key, name in _DEFAULTS.items()}
    return Limits(vms=values["max_vms"], vcpus=values["max_vcpus"], memory_mib=values["max_memory_mib"],
                  disk_gib=values["max_disk_gib"])


def _vm_sizes(usage: Usage, host: Host, uuids: set[str]) -> None:
    try:
        conn = host_connection(host)
        mine = [s for s in hv.list_domains(conn, sizes=False) if s.uuid in uuids]
        for summary in hv.fill_sizes(conn, mine):
            usage.vcpus += summary.vcpus or 0
            usage.memory_mib += (summary.max_memory_kib or 0) // 1024
    except hv.HypervisorError:
        usage.unavailable.append(host.name)


def _disk_bytes(usage: Usage, user: Actor) -> None:
    pools: dict[tuple[int, str], list[str]] = {}
    hosts: dict[int, Host] = {}
    for row in VolumeOwner.objects.filter(owner_id=getattr(user, "pk", None)).select_related("host"):
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
                usage.disk_bytes += pool.volume(name).spec().capacity
            except (hv.NotFound, hv.InvalidRequest):
                continue
            except hv.HypervisorError:
                break


def quota_usage(user: Actor) -> Usage:
    """What ``user`` uses now, read from libvirt (cost: see the module's docstring)."""
    usage = Usage()
    by_host: dict[int, set[str]] = {}
    hosts: dict[int, Host] = {}
    for vm in VirtualMachine.objects.filter(owner_id=getattr(user, "pk", None)).select_related("host"):
        usage.vms += 1
        by_host.setdefault(vm.host_id, set()).add(str(vm.uuid))
        hosts[vm.host_id] = vm.host
    for host_id, uuids in by_host.items():
        _vm_sizes(usage, hosts[host_id], uuids)
    _disk_bytes(usage, user)
    return usage


@dataclass(frozen=True)
class QuotaSummary:
    limits: Limits
    usage: Usage

    def resources(self) -> list[tuple[str, int | None, int]]:
        """(key, limit or None, used) for each resource; disk in whole GiB, rounded up."""
        u, lim = self.usage, self.limits
        return [("vms", lim.vms, u.vms), ("vcpus", lim.vcpus, u.vcpus), ("memory_mib", lim.memory_mib, u.memory_mib),
                ("disk_gib", lim.disk_gib, u.disk_gib_used)]

    @property
    def line(self) -> str:
        """"2 of 4 VMs · 3 of 8 vCPUs · 3.0 of 8 GiB memory · 25 of 100 GiB disk" — limited resources only."""
        u, lim = self.usage, self.limits
        parts = []
        if lim.vms is not None:
            parts.append(f"{u.vms} of {lim.vms} VMs")
        if lim.vcpus is not None:
            parts.append(f"{u.vcpus} of {lim.vcpus} vCPUs")
        if lim.memory_mib is not None:
            parts.append(f"{u.memory_mib / 1024:.1f} of {lim.memory_mib / 1024:g} GiB memory")
        if lim.disk_gib is not None:
            parts.append(f"{u.disk_gib_used} of {lim.disk_gib} GiB disk")
        return " · ".join(parts)


def quota_summary(user: Actor, *, always: bool = False) -> QuotaSummary:
    """Limits and usage; unless ``always``, usage is read from libvirt only when something is limited."""
    limits = quota_limits(user)
    return QuotaSummary(limits=limits, usage=quota_usage(user) if always or not limits.unlimited else Usage())
