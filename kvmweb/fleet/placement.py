"""Placement: which host a new or moving VM goes to.

Filters, in order — the first that fails is the host's reason: enabled, not in maintenance, not excluded (the VM
is there already), answers, has the storage pool / network / ISO asked for (active), has the memory and the vCPUs
under the overcommit ratios. Memory: the host's memory x ``KVMWEB_MEMORY_OVERCOMMIT`` minus what its active guests
are given (their current memory) must hold the VM's. CPU: the host's CPUs x ``KVMWEB_CPU_OVERCOMMIT`` minus its
active guests' vCPUs must hold the VM's vCPUs. Among the hosts that pass, the one with the most memory left after
placing wins (ties: the host's name). Every host's verdict comes back with the choice, so a job log can say why.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection

LOCAL_URIS = ("qemu:///", "qemu+unix:///")


@dataclass(frozen=True)
class Need:
    """What a VM needs of a host."""

    memory_kib: int
    vcpus: int
    pool: str = ""
    network: str = ""
    iso: str = ""  # a path the host must have (a CD-ROM's ISO)


@dataclass(frozen=True)
class Verdict:
    host: Host
    fits: bool
    reason: str  # why it does not fit, or what it has left
    free_memory_kib: int = 0  # after placing (the weight)

    @property
    def line(self) -> str:
        return f"{self.host.name}: {'fits' if self.fits else 'no'} — {self.reason}"


@dataclass(frozen=True)
class Placement:
    host: Host | None
    verdicts: tuple[Verdict, ...]

    @property
    def reason(self) -> str:
        """One sentence for a job log or a refusal."""
        if self.host is None:
            return "No host fits: " + "; ".join(v.line for v in self.verdicts) + "." if self.verdicts \
                else "No host fits: the portal has no hosts."
        chosen = next(v for v in self.verdicts if v.host == self.host)
        others = [v.line for v in self.verdicts if v.host != self.host]
        return (f"Placed on {self.host.name}: it fits with the most memory left ({hv.human(chosen.free_memory_kib * 1024)})"
                + (f". Others: {'; '.join(others)}." if others else "."))


def _iso_present(conn: hv.Connection, host: Host, path: str) -> bool:
    if hv.volume_by_path(conn, path) is not None:
        return True
    return host.uri.startswith(LOCAL_URIS) and os.path.isfile(path)


def host_verdict(host: Host, need: Need, *, exclude: Host | None = None) -> Verdict:
    """Whether ``need`` fits on ``host`` and why (not)."""
    if not host.enabled:
        return Verdict(host, False, "disabled")
    if host.maintenance:
        return Verdict(host, False, "in maintenance")
    if exclude is not None and host.pk == exclude.pk:
        return Verdict(host, False, "the VM is there")
    try:
        conn = host_connection(host)
        cap = hv.host_capacity(conn)
        lookups: tuple[tuple[str, str, Callable[[hv.Connection, str], hv.Pool | hv.Network]], ...] = (
            ("pool", need.pool, hv.pool_lookup), ("network", need.network, hv.network_lookup))
        for kind, name, lookup in lookups:
            if not name:
                continue
            try:
                if not lookup(conn, name).is_active():
                    return Verdict(host, False, f"its {kind} {name} is not running")
            except hv.NotFound:
                return Verdict(host, False, f"no {kind} {name}")
        if need.iso and not _iso_present(conn, host, need.iso):
            return Verdict(host, False, f"no file {need.iso}")
    except hv.HypervisorError as exc:
        return Verdict(host, False, f"unavailable ({exc.detail})")
    memory = int(cap.memory_kib * settings.KVMWEB_MEMORY_OVERCOMMIT) - cap.memory_used_kib
    cpus = int(cap.cpus * settings.KVMWEB_CPU_OVERCOMMIT) - cap.vcpus_used
    if memory < need.memory_kib:
        return Verdict(host, False, f"not enough memory: {hv.human(max(memory, 0) * 1024)} free of "
                                    f"{hv.human(cap.memory_kib * 1024)} x {settings.KVMWEB_MEMORY_OVERCOMMIT:g}, "
                                    f"needs {hv.human(need.memory_kib * 1024)}")
    if cpus < need.vcpus:
        return Verdict(host, False, f"not enough CPU: {max(cpus, 0)} vCPUs free of {cap.cpus} CPUs x "
                                    f"{settings.KVMWEB_CPU_OVERCOMMIT:g}, needs {need.vcpus}")
    left = memory - need.memory_kib
    return Verdict(host, True, f"{hv.human(left * 1024)} memory and {cpus - need.vcpus} vCPUs left", left)


def place(*, need: Need, hosts: Iterable[Host] | None = None, exclude: Host | None = None) -> Placement:
    """The host ``need`` fits best (most memory left), with every host's verdict; ``host`` None when none fits."""
    candidates = list(hosts) if hosts is not None else list(Host.objects.all())
    verdicts = tuple(host_verdict(h, need, exclude=exclude) for h in candidates)
    fitting = sorted((v for v in verdicts if v.fits), key=lambda v: (-v.free_memory_kib, v.host.name))
    return Placement(host=fitting[0].host if fitting else None, verdicts=verdicts)
