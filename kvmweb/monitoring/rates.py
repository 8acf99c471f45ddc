"""Rates from two samples of cumulative counters: pure functions, no I/O.

A counter that went down (the VM was restarted: QEMU's counters start again at zero) gives no rate for that
interval, nor does a VM seen for the first time or an interval of zero length. A VM that was shut off at the previous
sample and runs now started during the interval: its counters count from zero.
"""
from __future__ import annotations

from dataclasses import dataclass

from kvmweb import hypervisor as hv

from .store import HOST_METRICS, Rates


@dataclass(frozen=True)
class HostRates:
    cpu_pct: float | None = None
    mem_used_bytes: float | None = None
    mem_pct: float | None = None

    def values(self) -> tuple[float | None, ...]:
        return tuple(getattr(self, m) for m in HOST_METRICS)


def _clamp_pct(value: float) -> float:
    return max(0.0, min(100.0, value))


def per_second(prev: int, cur: int, elapsed: float) -> float | None:
    """``(cur - prev) / elapsed``, or ``None`` when the counter went back (reset) or no time passed."""
    if elapsed <= 0 or cur < prev:
        return None
    return (cur - prev) / elapsed


def vm_memory(cur: hv.DomainStats) -> tuple[float | None, float | None]:
    """(bytes used, % of current memory) from one sample."""
    if cur.memory_used_kib is None:
        return None, None
    total = cur.memory_kib or cur.memory_max_kib
    pct = _clamp_pct(100.0 * cur.memory_used_kib / total) if total else None
    return float(cur.memory_used_kib * 1024), pct


_ZERO = hv.DomainStats(uuid="", name="", state=hv.DomainState.SHUTOFF, cpu_time_ns=0, vcpus=0, memory_kib=0,
                       memory_max_kib=0, memory_used_kib=None, block_rd_bytes=0, block_wr_bytes=0, block_rd_reqs=0,
                       block_wr_reqs=0, net_rx_bytes=0, net_tx_bytes=0)


def vm_rates(prev: hv.DomainStats | None, cur: hv.DomainStats, elapsed: float, host_cpus: int) -> Rates:
    """The rates of ``cur`` since ``prev``, ``elapsed`` seconds earlier, on a host with ``host_cpus`` CPUs
    (``prev``: ``None`` if the VM was not seen then)."""
    if not cur.state.is_active:
        return Rates()
    mem_used, mem_pct = vm_memory(cur)
    if prev is None or prev.uuid != cur.uuid or elapsed <= 0:
        return Rates(mem_used_bytes=mem_used, mem_pct=mem_pct)
    if not prev.state.is_active:  # started during the interval: its counters began at zero
        prev = _ZERO
    cpu_ns_per_s = per_second(prev.cpu_time_ns, cur.cpu_time_ns, elapsed)
    cpu_pct = cpu_host_pct = None
    if cpu_ns_per_s is not None:
        if cur.vcpus:
            cpu_pct = _clamp_pct(cpu_ns_per_s / 1e9 / cur.vcpus * 100.0)
        if host_cpus:
            cpu_host_pct = _clamp_pct(cpu_ns_per_s / 1e9 / host_cpus * 100.0)
    return Rates(
        cpu_pct=cpu_pct, cpu_host_pct=cpu_host_pct, mem_used_bytes=mem_used, mem_pct=mem_pct,
        disk_rd_bps=per_second(prev.block_rd_bytes, cur.block_rd_bytes, elapsed),
        disk_wr_bps=per_second(prev.block_wr_bytes, cur.block_wr_bytes, elapsed),
        disk_rd_iops=per_second(prev.block_rd_reqs, cur.block_rd_reqs, elapsed),
        disk_wr_iops=per_second(prev.block_wr_reqs, cur.block_wr_reqs, elapsed),
        net_rx_bps=per_second(prev.net_rx_bytes, cur.net_rx_bytes, elapsed),
        net_tx_bps=per_second(prev.net_tx_bytes, cur.net_tx_bytes, elapsed),
    )


def host_rates(prev: hv.HostStats | None, cur: hv.HostStats) -> HostRates:
    """The host's CPU % (busy / all CPU time, over every CPU) since ``prev``, and its memory now."""
    cpu = None
    if prev is not None:
        busy, total = cur.cpu_busy_ns - prev.cpu_busy_ns, cur.cpu_total_ns - prev.cpu_total_ns
        if total > 0 and busy >= 0:
            cpu = _clamp_pct(100.0 * busy / total)
    used = pct = None
    if cur.memory_available_kib is not None and cur.memory_total_kib:
        used_kib = max(0, cur.memory_total_kib - cur.memory_available_kib)
        used, pct = float(used_kib * 1024), _clamp_pct(100.0 * used_kib / cur.memory_total_kib)
    return HostRates(cpu_pct=cpu, mem_used_bytes=used, mem_pct=pct)
