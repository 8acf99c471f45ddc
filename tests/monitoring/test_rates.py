"""Rates from two samples of counters: CPU % of the VM's vCPUs and of the host, memory, disk and network rates,
counter resets, VMs that start or stop between samples, the host's CPU and memory."""
from __future__ import annotations

from dataclasses import replace

import pytest

from kvmweb import hypervisor as hv
from kvmweb.monitoring.rates import host_rates, per_second, vm_rates

GiB_KIB = 1024 * 1024


def sample(**kw: object) -> hv.DomainStats:
    base = dict(uuid="u-1", name="vm", state=hv.DomainState.RUNNING, cpu_time_ns=0, vcpus=2, memory_kib=GiB_KIB,
                memory_max_kib=2 * GiB_KIB, memory_used_kib=GiB_KIB // 4, block_rd_bytes=0, block_wr_bytes=0,
                block_rd_reqs=0, block_wr_reqs=0, net_rx_bytes=0, net_tx_bytes=0)
    base.update(kw)
    return hv.DomainStats(**base)  # type: ignore[arg-type]


def test_cpu_of_the_vcpus_and_of_the_host() -> None:
    prev = sample(cpu_time_ns=10_000_000_000)
    cur = sample(cpu_time_ns=15_000_000_000)  # 5 s of CPU in 5 s on 2 vCPUs: one of two busy
    r = vm_rates(prev, cur, 5.0, host_cpus=8)
    assert r.cpu_pct == pytest.approx(50.0)
    assert r.cpu_host_pct == pytest.approx(12.5)


def test_cpu_is_clamped_to_100() -> None:
    r = vm_rates(sample(cpu_time_ns=0), sample(cpu_time_ns=30_000_000_000), 5.0, host_cpus=2)
    assert r.cpu_pct == 100.0 and r.cpu_host_pct == 100.0


def test_disk_and_network_rates() -> None:
    prev = sample(block_rd_bytes=1000, block_wr_bytes=0, block_rd_reqs=10, block_wr_reqs=0, net_rx_bytes=0,
                  net_tx_bytes=500)
    cur = sample(block_rd_bytes=11_000, block_wr_bytes=4096, block_rd_reqs=30, block_wr_reqs=2, net_rx_bytes=2000,
                 net_tx_bytes=500)
    r = vm_rates(prev, cur, 2.0, host_cpus=4)
    assert (r.disk_rd_bps, r.disk_wr_bps, r.disk_rd_iops, r.disk_wr_iops) == (5000, 2048, 10, 1)
    assert (r.net_rx_bps, r.net_tx_bps) == (1000, 0)


def test_memory_used_and_percent_from_one_sample() -> None:
    r = vm_rates(None, sample(memory_used_kib=GiB_KIB // 4), 0.0, host_cpus=4)
    assert r.mem_used_bytes == GiB_KIB // 4 * 1024
    assert r.mem_pct == pytest.approx(25.0)
    assert r.cpu_pct is None and r.disk_rd_bps is None  # one sample gives no rate


def test_guest_that_reports_no_memory() -> None:
    r = vm_rates(sample(), sample(memory_used_kib=None, cpu_time_ns=1), 1.0, host_cpus=1)
    assert r.mem_used_bytes is None and r.mem_pct is None and r.cpu_pct is not None


def test_counter_reset_gives_no_rate_for_that_interval() -> None:
    """The VM was restarted between samples: QEMU's counters began again at zero."""
    prev = sample(cpu_time_ns=900_000_000_000, block_rd_bytes=10**9, net_rx_bytes=10**6)
    cur = sample(cpu_time_ns=2_000_000_000, block_rd_bytes=4096, net_rx_bytes=10**7)
    r = vm_rates(prev, cur, 5.0, host_cpus=4)
    assert r.cpu_pct is None and r.cpu_host_pct is None and r.disk_rd_bps is None
    assert r.net_rx_bps == pytest.approx((10**7 - 10**6) / 5)  # a counter that still grows keeps its rate
    assert r.mem_pct is not None
    assert per_second(5, 4, 1.0) is None and per_second(4, 5, 0.0) is None


def test_a_vm_that_started_during_the_interval_counts_from_zero() -> None:
    prev = sample(state=hv.DomainState.SHUTOFF, cpu_time_ns=0, memory_used_kib=None)
    cur = sample(cpu_time_ns=4_000_000_000, block_rd_bytes=8192)
    r = vm_rates(prev, cur, 4.0, host_cpus=4)
    assert r.cpu_pct == pytest.approx(50.0) and r.disk_rd_bps == pytest.approx(2048)


def test_a_shut_off_vm_has_no_rates() -> None:
    r = vm_rates(sample(cpu_time_ns=1), sample(state=hv.DomainState.SHUTOFF), 5.0, host_cpus=4)
    assert r.values() == (None,) * 10


def test_another_vm_or_no_time_gives_no_rate() -> None:
    assert vm_rates(sample(uuid="a"), sample(uuid="b", cpu_time_ns=5), 5.0, 1).cpu_pct is None
    assert vm_rates(sample(), sample(cpu_time_ns=5), 0.0, 1).cpu_pct is None


def test_host_cpu_and_memory() -> None:
    prev = hv.HostStats(cpus=4, memory_total_kib=4 * GiB_KIB, memory_free_kib=GiB_KIB,
                        memory_available_kib=3 * GiB_KIB, cpu_busy_ns=1000, cpu_total_ns=10_000)
    cur = replace(prev, cpu_busy_ns=4000, cpu_total_ns=20_000)
    r = host_rates(prev, cur)
    assert r.cpu_pct == pytest.approx(30.0)
    assert r.mem_used_bytes == GiB_KIB * 1024 and r.mem_pct == pytest.approx(25.0)
    assert host_rates(None, cur).cpu_pct is None
    unknown = replace(cur, memory_available_kib=None, memory_free_kib=None)  # the test driver
    assert host_rates(prev, unknown).mem_pct is None


def test_memory_from_the_balloon_counters() -> None:
    """The bulk stats' balloon fields become "used": current - unused where the guest reports, else QEMU's RSS."""
    from kvmweb.hypervisor.stats import domain_stats_from

    class Dom:
        def UUIDString(self) -> str:  # noqa: N802 - libvirt's name
            return "u-2"

        def name(self) -> str:
            return "vm2"

    base = {"state.state": 1, "balloon.current": 1000, "balloon.maximum": 2000, "vcpu.current": 2, "cpu.time": 7,
            "block.count": 2, "block.0.rd.bytes": 10, "block.1.rd.bytes": 5, "net.count": 1, "net.0.tx.bytes": 3}
    with_guest = domain_stats_from(Dom(), {**base, "balloon.unused": 600, "balloon.rss": 900})  # type: ignore[arg-type]
    assert with_guest.memory_used_kib == 400
    assert (with_guest.block_rd_bytes, with_guest.net_tx_bytes, with_guest.cpu_time_ns) == (15, 3, 7)
    assert domain_stats_from(Dom(), {**base, "balloon.rss": 900}).memory_used_kib == 900  # type: ignore[arg-type]
    assert domain_stats_from(Dom(), {**base, "balloon.rss": 1900}).memory_used_kib == 1000  # type: ignore[arg-type]
    assert domain_stats_from(Dom(), base).memory_used_kib is None  # type: ignore[arg-type]
    off = domain_stats_from(Dom(), {**base, "state.state": 5, "balloon.rss": 900})  # type: ignore[arg-type]
    assert off.state is hv.DomainState.SHUTOFF and off.memory_used_kib is None
