"""Usage counters of domains and hosts, read in bulk: the raw material of the portal's monitoring.

``virsh domstats --state --cpu-total --balloon --vcpu --interface --block`` → :func:`domain_stats_all` (ONE
``getAllDomainStats`` call for every domain of a host); ``virsh nodecpustats`` + ``virsh nodememstats`` →
:func:`host_stats`. Counters are cumulative (CPU nanoseconds, bytes, requests): rates are the caller's business
(``kvmweb.monitoring.rates``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import libvirt

from .domain import DomainState
from .errors import InvalidRequest, NotFound, OperationInvalid
from .registry import Connection

STATS_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)


@dataclass(frozen=True)
class DomainStats:
    """One domain's counters at one moment. Counters are 0 for a domain that is not running."""

    uuid: str
    name: str
    state: DomainState
    cpu_time_ns: int
    vcpus: int
    memory_kib: int  # current (balloon) memory
    memory_max_kib: int
    memory_used_kib: int | None  # what the guest uses: current - unused (balloon driver), else QEMU's RSS; None if unknown
    block_rd_bytes: int
    block_wr_bytes: int
    block_rd_reqs: int
    block_wr_reqs: int
    net_rx_bytes: int
    net_tx_bytes: int


@dataclass(frozen=True)
class HostStats:
    """A host's CPUs, memory and cumulative CPU time (for the host's CPU %)."""

    cpus: int
    memory_total_kib: int
    memory_free_kib: int | None  # None where the driver cannot tell (the test driver)
    memory_available_kib: int | None  # free + buffers + cached
    cpu_busy_ns: int  # kernel + user, summed over every CPU
    cpu_total_ns: int  # kernel + user + idle + iowait


def _sum(values: dict[str, Any], group: str, field: str) -> int:
    total = 0
    for i in range(int(values.get(f"{group}.count", 0))):
        total += int(values.get(f"{group}.{i}.{field}", 0) or 0)
    return total


def _used_kib(values: dict[str, Any], current: int) -> int | None:
    unused = values.get("balloon.unused")
    if unused is not None and current:
        return max(0, current - int(unused))
    rss = values.get("balloon.rss")
    if rss is not None:
        return int(rss) if not current else min(int(rss), current)
    return None


def domain_stats_from(dom: libvirt.virDomain, values: dict[str, Any]) -> DomainStats:
    """A :class:`DomainStats` from one row of ``getAllDomainStats``/``domainListGetStats``."""
    state = DomainState.from_code(int(values.get("state.state", 0)))
    current = int(values.get("balloon.current", 0) or 0)
    return DomainStats(
        uuid=dom.UUIDString(), name=dom.name(), state=state,
        cpu_time_ns=int(values.get("cpu.time", 0) or 0),
        vcpus=int(values.get("vcpu.current", 0) or 0),
        memory_kib=current, memory_max_kib=int(values.get("balloon.maximum", 0) or 0),
        memory_used_kib=_used_kib(values, current) if state.is_active else None,
        block_rd_bytes=_sum(values, "block", "rd.bytes"), block_wr_bytes=_sum(values, "block", "wr.bytes"),
        block_rd_reqs=_sum(values, "block", "rd.reqs"), block_wr_reqs=_sum(values, "block", "wr.reqs"),
        net_rx_bytes=_sum(values, "net", "rx.bytes"), net_tx_bytes=_sum(values, "net", "tx.bytes"),
    )


def domain_stats_all(conn: Connection) -> list[DomainStats]:
    """Every domain's counters on the host, in ONE bulk libvirt call (``virsh domstats``).

    Drivers whose bulk stats hold only ``state.*`` (the test driver) get CPU time, vCPUs and memory from one
    ``info()`` per *running* domain that lacks them, as :func:`~.domain.domain_fill_sizes` does; shut-off domains
    never cost a call.
    """
    rows = conn.call(lambda c: c.getAllDomainStats(STATS_GROUPS, 0))
    out = []
    for dom, values in rows:
        stats = domain_stats_from(dom, values)
        if stats.state.is_active and "cpu.time" not in values:
            try:
                _state, maximum, current, vcpus, cpu_ns = conn.run(dom.info)
            except (NotFound, OperationInvalid):
                continue  # gone between the two calls
            stats = replace(stats, cpu_time_ns=int(cpu_ns), vcpus=int(vcpus), memory_kib=int(current),
                            memory_max_kib=int(maximum))
        out.append(stats)
    out.sort(key=lambda s: s.name)
    return out


def host_stats(conn: Connection) -> HostStats:
    """The host's CPU count, memory and CPU time (``virsh nodeinfo``, ``nodecpustats``, ``nodememstats``): three
    calls, whatever the number of domains."""
    _model, memory_mib, cpus, *_rest = conn.call(lambda c: c.getInfo())
    cpu = conn.call(lambda c: c.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0))
    busy = int(cpu.get("kernel", 0)) + int(cpu.get("user", 0))
    total = busy + int(cpu.get("idle", 0)) + int(cpu.get("iowait", 0))
    total_kib, free, available = memory_mib * 1024, None, None
    try:
        mem = conn.call(_memory_stats)
    except InvalidRequest:  # VIR_ERR_NO_SUPPORT: the test driver
        mem = {}
    if mem:
        total_kib = int(mem.get("total", total_kib))
        free = int(mem.get("free", 0))
        available = free + int(mem.get("buffers", 0)) + int(mem.get("cached", 0))
    return HostStats(cpus=int(cpus), memory_total_kib=int(total_kib), memory_free_kib=free,
                     memory_available_kib=available, cpu_busy_ns=busy, cpu_total_ns=total)


def _memory_stats(c: libvirt.virConnect) -> dict[str, int]:
    stats: dict[str, int] = c.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
    return stats
