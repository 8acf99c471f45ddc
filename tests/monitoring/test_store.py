"""The round-robin history: averages consolidated on write, gaps while nothing was written (a host down), the ring
wrapping around without showing old periods as new, a restarted writer keeping the period's average, the fixed
size per VM, and the reads and deletes the other apps call."""
from __future__ import annotations

import math

import pytest

from kvmweb.core.errors import ValidationError
from kvmweb.monitoring import selectors, services, store
from kvmweb.monitoring.store import HOST, METRICS, RANGES, VM, HistoryWriter

from .fake_redis import FakeRedis

T0 = 1_800_000_000  # a multiple of every tier's step
UUID = "11111111-2222-3333-4444-555555555555"


def vm_values(cpu: float | None, **kw: float | None) -> tuple[float | None, ...]:
    row = {m: None for m in METRICS}
    row.update(cpu_pct=cpu, **kw)
    return tuple(row[m] for m in METRICS)


def cpu_points(series: store.Series) -> dict[int, float]:
    return {t: v for t, v in zip(series.t, series.values["cpu_pct"], strict=True) if v is not None}


def test_record_roundtrip_and_consolidation() -> None:
    rec = store.consolidate(None, 7, store.to_floats([1.0, None, 3.0]))
    rec = store.consolidate(rec, 7, store.to_floats([3.0, 5.0, None]))
    rec = store.consolidate(rec, 7, store.to_floats([5.0, None, None]))
    assert rec.period == 7 and rec.n == 3
    assert rec.values[0] == pytest.approx(3.0)  # (1 + 3 + 5) / 3
    assert rec.values[1] == 5.0 and rec.values[2] == 3.0  # a metric missing from a sample keeps its average
    again = store.unpack(store.pack(rec), 3)
    assert again.period == 7 and again.n == 3 and again.values[0] == pytest.approx(3.0)
    fresh = store.consolidate(rec, 8, (9.0, math.nan, 1.0))  # another period starts afresh
    assert (fresh.period, fresh.n, fresh.values[0], fresh.values[2]) == (8, 1, 9.0, 1.0)
    assert math.isnan(fresh.values[1])


def test_averages_per_tier(stats_redis: FakeRedis) -> None:
    writer = HistoryWriter(VM)
    for i, cpu in enumerate([10.0, 20.0, 30.0, 40.0]):  # 4 samples, 5 s apart, all in one minute
        writer.write(T0 + 5 * i, {UUID: vm_values(cpu, mem_pct=50.0)})
    now = T0 + 15
    hour = selectors.vm_series(UUID, "1h", now=now)
    assert hour.step == 5 and len(hour.t) == 720 and hour.t[-1] == T0 + 15
    assert cpu_points(hour) == {T0: 10.0, T0 + 5: 20.0, T0 + 10: 30.0, T0 + 15: 40.0}
    day = selectors.vm_series(UUID, "1d", now=now)
    assert day.step == 60 and len(day.t) == 1440
    assert cpu_points(day) == {T0: pytest.approx(25.0)}
    month = selectors.vm_series(UUID, "30d", now=now)
    assert month.step == 1800 and cpu_points(month) == {T0: pytest.approx(25.0)}
    assert month.values["mem_pct"][-1] == 50.0 and month.values["disk_rd_bps"][-1] is None
    assert set(hour.values) == set(METRICS)


def test_gaps_while_the_host_was_down(stats_redis: FakeRedis) -> None:
    writer = HistoryWriter(VM)
    times = [T0 + 5 * i for i in range(6)] + [T0 + 300 + 5 * i for i in range(3)]  # 4.5 minutes of nothing
    for t in times:
        writer.write(t, {UUID: vm_values(50.0)})
    hour = selectors.vm_series(UUID, "1h", now=T0 + 310)
    assert sorted(cpu_points(hour)) == times
    gap = [t for t, v in zip(hour.t, hour.values["cpu_pct"], strict=True) if T0 + 30 <= t < T0 + 300]
    assert len(gap) == 54 and all(v is None for t, v in zip(hour.t, hour.values["cpu_pct"], strict=True)
                                  if T0 + 30 <= t < T0 + 300)
    day = selectors.vm_series(UUID, "1d", now=T0 + 310)
    assert sorted(cpu_points(day)) == [T0, T0 + 300]  # minutes 1 to 4: gaps


def test_the_ring_wraps_around_without_showing_old_periods(stats_redis: FakeRedis) -> None:
    writer = HistoryWriter(VM)
    writer.write(T0, {UUID: vm_values(1.0)})
    writer.write(T0 + 5, {UUID: vm_values(2.0)})
    span = RANGES["1h"].span
    writer.write(T0 + span, {UUID: vm_values(3.0)})  # one hour later: the same slot as T0
    later = selectors.vm_series(UUID, "1h", now=T0 + span)
    assert cpu_points(later) == {T0 + span: 3.0, T0 + 5: 2.0}  # T0+5 is still inside the last hour
    assert later.t[0] == T0 + 5 and later.t[-1] == T0 + span
    much_later = selectors.vm_series(UUID, "1h", now=T0 + span + 10)
    assert cpu_points(much_later) == {T0 + span: 3.0}  # T0+5 aged out: its slot is not read as a newer period
    before = selectors.vm_series(UUID, "1h", now=T0 + 5)
    assert cpu_points(before) == {T0 + 5: 2.0}  # T0's slot now holds T0+span: a gap for T0, never a wrong value
    assert stats_redis.strlen(store.history_key(VM, UUID, "1h")) <= 720 * store.record_size(VM)


def test_a_restarted_writer_keeps_the_average_of_the_period(stats_redis: FakeRedis) -> None:
    HistoryWriter(VM).write(T0, {UUID: vm_values(10.0)})
    HistoryWriter(VM).write(T0 + 5, {UUID: vm_values(30.0)})  # a new collector process, same minute
    assert cpu_points(selectors.vm_series(UUID, "1d", now=T0 + 5)) == {T0: pytest.approx(20.0)}


def test_writes_cost_one_setrange_per_tier_after_the_first(stats_redis: FakeRedis) -> None:
    writer = HistoryWriter(VM)
    uuids = [f"vm-{i}" for i in range(50)]
    writer.write(T0, {u: vm_values(1.0) for u in uuids})
    before = stats_redis.commands
    writer.write(T0 + 5, {u: vm_values(2.0) for u in uuids})
    assert stats_redis.commands - before == 50 * len(RANGES)  # no reads, no TTL refresh within the hour


def test_bytes_per_vm_are_bounded(stats_redis: FakeRedis) -> None:
    assert store.bytes_per_vm() <= 200 * 1024
    assert store.bytes_per_vm() == sum(t.slots for t in RANGES.values()) * (3 + 2 + 4 * len(METRICS))
    writer = HistoryWriter(VM)
    for i in range(0, 40 * 86400, 1800):  # 40 days at the 30d tier's step: the ring wrapped
        writer.write(T0 + i, {UUID: vm_values(5.0)})
    total = sum(stats_redis.strlen(store.history_key(VM, UUID, tier)) for tier in RANGES)
    assert total == store.bytes_per_vm()  # made at full size once, never grown
    assert stats_redis.ttl(store.history_key(VM, UUID, "30d")) > RANGES["30d"].span


def test_hosts_have_their_own_rings(stats_redis: FakeRedis) -> None:
    HistoryWriter(HOST).write(T0, {"3": (12.5, 1024.0, 40.0)})
    series = selectors.host_series(3, "1h", now=T0)
    assert set(series.values) == {"cpu_pct", "mem_used_bytes", "mem_pct"}
    assert series.values["cpu_pct"][-1] == 12.5 and series.values["mem_pct"][-1] == 40.0
    assert all(v is None for v in selectors.vm_series(UUID, "1h", now=T0).values["cpu_pct"])


def test_unknown_range_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        selectors.vm_series(UUID, "2w")
    assert "1h" in err.value.detail
    with pytest.raises(ValidationError):
        selectors.host_series(1, "")


def test_latest_values_and_delete(stats_redis: FakeRedis) -> None:
    store.latest_write(4, T0, {UUID: {"cpu_pct": 12.0, "mem_pct": None, "vcpus": 2, "mem_bytes": 1024}}, [], None,
                       ttl_ms=15_000)
    HistoryWriter(VM).write(T0, {UUID: vm_values(12.0)})
    before = stats_redis.commands
    found = selectors.latest_for([UUID, "not-sampled"])
    assert stats_redis.commands - before == 1  # one round trip for any number of VMs
    assert list(found) == [UUID]
    assert found[UUID].cpu_pct == 12.0 and found[UUID].mem_pct is None and found[UUID].host == "4"
    assert found[UUID].t == T0 and found[UUID].vcpus == 2 and found[UUID].as_dict()["cpu_pct"] == 12.0
    assert selectors.latest_for([]) == {}
    services.vm_history_delete(UUID)
    assert selectors.latest_for([UUID]) == {}
    assert not [k for k in stats_redis.keys(f"{store.prefix()}*") if UUID in k]


def test_latest_values_expire(stats_redis: FakeRedis) -> None:
    clock = [100.0]
    stats_redis.clock = lambda: clock[0]
    host = store.HostLatest(t=T0, cpu_pct=5.0, mem_used_bytes=1.0, mem_pct=2.0, cpus=4, mem_total_bytes=8,
                            vms_running=1)
    store.latest_write(4, T0, {UUID: {"cpu_pct": 1.0}}, [], host, ttl_ms=15_000)
    assert selectors.host_latest(4) == host and UUID in selectors.latest_for([UUID])
    clock[0] += 15.5  # three intervals without a sample: the collector stopped
    assert selectors.host_latest(4) is None and selectors.latest_for([UUID]) == {}
