"""The collector on libvirt's test driver: one bulk libvirt call per sample whatever the number of VMs, running
VMs get latest values, history and a published row, shut-off ones none; stopped VMs drop out; one collector per
host holds the lease; the loop samples until stopped and then lets the lease go; a host that does not answer is
tried again after a back-off that doubles, and every interval again once it answers."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from kvmweb import hypervisor as hv
from kvmweb.monitoring import selectors, store
from kvmweb.monitoring.collector import BACKOFF_MAX, Collector
from tests.conftest import spec_testdrv

from .fake_redis import FakeRedis

URI = "test:///default"
T0 = 1_800_000_000


class Clock:
    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


def define(*, start: bool) -> hv.DomainSummary:
    conn = hv.registry.connection(URI)
    dom = hv.domain_define(conn, spec_testdrv(vcpus=2))
    if start:
        dom.start()
    return next(r for r in hv.domain_list(conn, sizes=False) if r.uuid == dom.uuid)


@pytest.fixture
def published() -> list[tuple[str, int, list[dict[str, Any]]]]:
    return []


@pytest.fixture
def collector(test_host, stats_redis: FakeRedis, published) -> Collector:  # type: ignore[no-untyped-def]
    return Collector(URI, test_host.pk, publish=lambda h, t, rows: published.append((h, t, rows)), interval=5,
                     clock=Clock())


def test_running_vms_are_sampled_shut_off_ones_not(collector: Collector, published, test_host) -> None:  # type: ignore[no-untyped-def]
    running, off = define(start=True), define(start=False)
    first = collector.sample_once()
    assert first.domains >= 2
    collector.clock.now += 5  # type: ignore[attr-defined]
    second = collector.sample_once()
    rows = {r["uuid"]: r for r in second.rows}
    assert running.uuid in rows and off.uuid not in rows
    row = rows[running.uuid]
    assert row["name"] == running.name and row["vcpus"] == 2
    assert row["cpu_pct"] is not None and 0 <= row["cpu_pct"] <= 100  # the test driver's CPU time is a clock
    assert set(store.METRICS) <= set(row)
    assert published[-1][0] == str(test_host.pk) and published[-1][1] == T0 + 5 and published[-1][2] == second.rows
    latest = selectors.latest_for([running.uuid, off.uuid])
    assert list(latest) == [running.uuid]
    assert latest[running.uuid].cpu_pct == row["cpu_pct"] and latest[running.uuid].host == str(test_host.pk)
    series = selectors.vm_series(running.uuid, "1h", now=T0 + 5)
    assert series.values["cpu_pct"][-1] == pytest.approx(row["cpu_pct"], abs=1e-3)
    assert all(v is None for v in selectors.vm_series(off.uuid, "1h", now=T0 + 5).values["cpu_pct"])
    host = selectors.host_latest(test_host.pk)
    assert host is not None and host.cpus == 16 and host.vms_running == len(second.rows)
    assert selectors.host_series(test_host.pk, "1h", now=T0 + 5).t[-1] == T0 + 5


def test_one_bulk_call_whatever_the_number_of_vms(collector: Collector) -> None:
    collector.sample_once()
    base = collector.sample_once().libvirt_calls
    for _ in range(15):
        define(start=False)
    assert collector.sample_once().libvirt_calls == base  # shut-off VMs cost nothing more
    define(start=True)
    # the test driver has no CPU time in its bulk stats: one info() per running domain (real drivers: none)
    assert collector.sample_once().libvirt_calls == base + 1


def test_a_stopped_vm_drops_out_of_the_latest_values(collector: Collector) -> None:
    vm = define(start=True)
    collector.sample_once()
    assert vm.uuid in selectors.latest_for([vm.uuid])
    hv.domain_lookup(hv.registry.connection(URI), vm.uuid).destroy()
    collector.clock.now += 5  # type: ignore[attr-defined]
    sample = collector.sample_once()
    assert vm.uuid in sample.gone and vm.uuid not in {r["uuid"] for r in sample.rows}
    assert selectors.latest_for([vm.uuid]) == {}


def test_one_collector_per_host(test_host, stats_redis: FakeRedis) -> None:  # type: ignore[no-untyped-def]
    a = Collector(URI, test_host.pk, interval=5)
    b = Collector(URI, test_host.pk, interval=5)
    other_host = Collector(URI, test_host.pk + 1000, interval=5)
    assert a.acquire() is True
    assert b.acquire() is False
    assert other_host.acquire() is True
    assert a.acquire() is True  # renewed by its holder
    a.release()
    assert b.acquire() is True
    assert a.acquire() is False
    stats_redis.delete(store.lease_key(test_host.pk))  # b's lease expired (it hung) and a took it over
    assert a.acquire() is True
    assert b.acquire() is False and b.holds_lease is False  # b notices at its next renewal
    a.release()
    other_host.release()
    assert stats_redis.get(store.lease_key(test_host.pk)) is None


def test_the_loop_samples_until_stopped(test_host, stats_redis: FakeRedis, published) -> None:  # type: ignore[no-untyped-def]
    vm = define(start=True)
    collector = Collector(URI, test_host.pk, publish=lambda h, t, rows: published.append(rows), interval=0.05)
    worker = threading.Thread(target=collector.run, daemon=True)
    worker.start()
    try:
        for _ in range(200):
            if len(published) >= 3:
                break
            threading.Event().wait(0.05)
    finally:
        collector.stop()
        worker.join(10)
    assert not worker.is_alive()
    assert len(published) >= 3 and any(r["uuid"] == vm.uuid and r["cpu_pct"] is not None for r in published[-1])
    assert stats_redis.get(store.lease_key(test_host.pk)) is None  # released on the way out


def test_a_host_that_does_not_answer_is_retried(test_host, stats_redis: FakeRedis) -> None:  # type: ignore[no-untyped-def]
    collector = Collector("test:///nonexistent-file.xml", "down", interval=0.02)
    with pytest.raises(hv.HypervisorError):
        collector.sample_once()
    stop = threading.Event()
    worker = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    worker.start()
    threading.Event().wait(0.2)
    stop.set()
    worker.join(10)
    assert not worker.is_alive()  # the errors were logged, the loop kept going and stopped when asked
    assert selectors.host_latest("down") is None


def test_the_collector_backs_off_while_a_host_does_not_answer(test_host, stats_redis: FakeRedis) -> None:  # type: ignore[no-untyped-def]
    published: list[object] = []
    collector = Collector("test:///nonexistent-file.xml", test_host.pk, publish=lambda _h, _t, rows: published.append(rows), interval=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        _wait_for(lambda: collector.backoff >= 0.08)  # 0.01, 0.02, 0.04, 0.08...: doubling
        assert collector.backoff <= BACKOFF_MAX and not published
        collector.host_uri = "test:///default"  # the host answers again
        _wait_for(lambda: published and collector.backoff == 0)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def _wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
