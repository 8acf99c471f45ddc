"""The usage history, round-robin like RRD, in Redis (see docs/monitoring.md).

Every VM (by UUID) and every host (by host id) has, per tier of :data:`RANGES`, one Redis string of ``slots``
fixed-size records: ``period index (24 bits) + sample count (uint16) + one float32 per metric`` (45 bytes for a
VM, so a VM's rings fill the allocator's 32 and 64 KiB size classes exactly). A sample at time
``t`` belongs to period ``t // step`` and lands in slot ``period % slots`` (SETRANGE at ``slot * record size``):
the record is the running average of the samples of that period (consolidated on write). A slot whose period index
is not the one a reader expects is a gap (the host was down, the VM off, the collector stopped): it reads ``None``.
Old periods are overwritten as the ring wraps, so the size of a VM's history is fixed (:func:`bytes_per_vm`); a ring
is created at its full size at once (Redis would otherwise double a string's allocation each time SETRANGE grows
it). The period index is kept modulo 2**24: a slot could only be mistaken for a period 2**24 steps later (2.6
years at 5 s), and the keys expire long before (one day after their tier's span without a write).

The latest values (for lists, the dashboard, Prometheus) are short-lived JSON strings, one per VM and one per host,
that expire after three collector intervals: a stopped collector shows no stale numbers.

Everything here is plain data and Redis; it knows no Django model (the layer above checks permissions).
"""
from __future__ import annotations

import json
import math
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import redis
from django.conf import settings

METRICS = ("cpu_pct", "cpu_host_pct", "mem_used_bytes", "mem_pct", "disk_rd_bps", "disk_wr_bps", "disk_rd_iops",
           "disk_wr_iops", "net_rx_bps", "net_tx_bps")
HOST_METRICS = ("cpu_pct", "mem_used_bytes", "mem_pct")

VM, HOST = "vm", "host"
KIND_METRICS = {VM: METRICS, HOST: HOST_METRICS}


@dataclass(frozen=True)
class Tier:
    name: str
    step: int  # seconds per record
    slots: int  # records kept

    @property
    def span(self) -> int:
        return self.step * self.slots


RANGES: dict[str, Tier] = {
    "1h": Tier("1h", 5, 720),
    "1d": Tier("1d", 60, 1440),
    "30d": Tier("30d", 1800, 1440),
}
TTL_MARGIN = 86400  # history keys live one day longer than their tier's span: a forgotten VM's history goes away


# ------------------------------------------------------------------------------------------------ records
class Record(NamedTuple):
    period: int
    n: int  # samples averaged
    values: tuple[float, ...]  # NaN where a metric had no value


PERIOD_MASK = 0xFFFFFF


def record_struct(n_metrics: int) -> struct.Struct:
    return struct.Struct(f"<HBH{n_metrics}f")  # period's low 16 bits, its high 8 bits, count, the metrics


def record_size(kind: str) -> int:
    return record_struct(len(KIND_METRICS[kind])).size


def bytes_per_vm() -> int:
    """The fixed size of one VM's whole history (every tier)."""
    return sum(t.slots for t in RANGES.values()) * record_size(VM)


def to_floats(values: Sequence[float | None]) -> tuple[float, ...]:
    return tuple(math.nan if v is None else float(v) for v in values)


def consolidate(old: Record | None, period: int, values: Sequence[float]) -> Record:
    """The record of ``period`` after one more sample: the running average per metric (a metric without a value in
    a sample keeps its average; one that had none takes the sample's). A record of another period is replaced."""
    if old is None or old.period != period or old.n == 0:
        return Record(period, 1, tuple(values))
    n = old.n
    merged = []
    for a, b in zip(old.values, values, strict=True):
        if math.isnan(b):
            merged.append(a)
        elif math.isnan(a):
            merged.append(b)
        else:
            merged.append((a * n + b) / (n + 1))
    return Record(period, min(n + 1, 0xFFFF), tuple(merged))


def pack(rec: Record) -> bytes:
    return record_struct(len(rec.values)).pack(rec.period & 0xFFFF, (rec.period >> 16) & 0xFF, rec.n, *rec.values)


def unpack(buf: bytes, n_metrics: int) -> Record:
    """A record as stored: its period is the 24 low bits of the real one."""
    low, high, count, *values = record_struct(n_metrics).unpack(buf)
    return Record(low | high << 16, count, tuple(values))


@dataclass(frozen=True)
class Series:
    """One range of one VM or host: ``t[i]`` (epoch seconds, the start of a step) and, per metric, the average over
    that step or ``None`` for a gap."""

    range: str
    step: int
    t: list[int]
    values: dict[str, list[float | None]]

    def as_dict(self) -> dict[str, Any]:
        return {"range": self.range, "step": self.step, "t": self.t, "values": self.values}


def series_from(buf: bytes | None, tier: Tier, metrics: Sequence[str], now: float) -> Series:
    """Decode a ring into the last ``tier.slots`` steps ending with the one ``now`` is in (oldest first)."""
    rs = record_struct(len(metrics))
    buf = buf or b""
    last = int(now // tier.step)
    times: list[int] = []
    cols: list[list[float | None]] = [[] for _ in metrics]
    for period in range(last - tier.slots + 1, last + 1):
        times.append(period * tier.step)
        off = (period % tier.slots) * rs.size
        chunk = buf[off:off + rs.size]
        rec = unpack(chunk, len(metrics)) if len(chunk) == rs.size else None
        hit = rec is not None and rec.n > 0 and rec.period == (period & PERIOD_MASK)
        for i, col in enumerate(cols):
            v = rec.values[i] if hit and rec is not None else math.nan
            col.append(None if math.isnan(v) else round(v, 3))
    return Series(range=tier.name, step=tier.step, t=times, values=dict(zip(metrics, cols, strict=True)))


# ------------------------------------------------------------------------------------------------ Redis
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client() -> Any:
    """This process's Redis client for the stats (the broker's Redis: settings ``REDIS_URL``)."""
    url = settings.REDIS_URL
    with _clients_lock:
        found = _clients.get(url)
        if found is None:
            found = _clients[url] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return found


def prefix() -> str:
    return str(settings.KVMWEB_STATS_PREFIX)


def history_key(kind: str, ident: str | int, tier: str) -> str:
    return f"{prefix()}{kind}:{ident}:{tier}"


def latest_key(kind: str, ident: str | int) -> str:
    return f"{prefix()}latest:{kind}:{ident}"


def lease_key(host_id: str | int) -> str:
    return f"{prefix()}lease:{host_id}"


@dataclass
class HistoryWriter:
    """Writes samples into the rings of one kind (VMs or hosts). One writer per collector: it keeps the record of
    the current period of each ring in memory, so a sample costs one SETRANGE per tier and no read (a ring it has
    not written yet is read once, pipelined, so a restarted collector keeps the period's average)."""

    kind: str
    redis: Any = None
    _acc: dict[tuple[str, str], Record] = field(default_factory=dict)
    _ttl_set: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = KIND_METRICS[self.kind]
        self.size = record_size(self.kind)

    def write(self, t: float, samples: Mapping[str, Sequence[float | None]]) -> int:
        """Add one sample per ident at time ``t``; returns the number of Redis commands sent."""
        r = self.redis or client()
        missing = [(ident, tier) for ident in samples for tier in RANGES if (ident, tier) not in self._acc]
        pipe = r.pipeline(transaction=False)
        commands = 0
        if missing:
            reads = r.pipeline(transaction=False)
            for ident, tier_name in missing:
                tier = RANGES[tier_name]
                key = history_key(self.kind, ident, tier_name)
                off = (int(t // tier.step) % tier.slots) * self.size
                reads.strlen(key)
                reads.getrange(key, off, off + self.size - 1)
            answers = reads.execute()
            for i, (ident, tier_name) in enumerate(missing):
                length, raw = answers[2 * i], answers[2 * i + 1]
                tier = RANGES[tier_name]
                period = int(t // tier.step)
                if not length:  # a new ring: made at its full size in one allocation
                    pipe.setrange(history_key(self.kind, ident, tier_name), tier.slots * self.size - 1, b"\0")
                    commands += 1
                elif raw and len(raw) == self.size:
                    rec = unpack(raw, len(self.metrics))
                    if rec.period == period & PERIOD_MASK:  # this period's average so far (a restarted collector)
                        self._acc[(ident, tier_name)] = Record(period, rec.n, rec.values)
        now = time.monotonic()
        for ident, values in samples.items():
            floats = to_floats(values)
            for tier_name, tier in RANGES.items():
                period = int(t // tier.step)
                rec = consolidate(self._acc.get((ident, tier_name)), period, floats)
                self._acc[(ident, tier_name)] = rec
                key = history_key(self.kind, ident, tier_name)
                pipe.setrange(key, (period % tier.slots) * self.size, pack(rec))
                commands += 1
                if now - self._ttl_set.get(key, -1e18) > 3600:
                    pipe.expire(key, tier.span + TTL_MARGIN)
                    self._ttl_set[key] = now
                    commands += 1
        if commands:
            pipe.execute()
        self._prune(t, samples.keys())
        return commands + 2 * len(missing)

    def _prune(self, t: float, written: Iterable[str]) -> None:
        """Forget records of periods that are over for idents not written now (stopped VMs)."""
        keep = set(written)
        for key, rec in list(self._acc.items()):
            ident, tier_name = key
            if ident not in keep and rec.period < int(t // RANGES[tier_name].step):
                del self._acc[key]
                self._ttl_set.pop(history_key(self.kind, ident, tier_name), None)


def history_read(kind: str, ident: str | int, tier_name: str, *, now: float | None = None,
                 redis_client: Any = None) -> Series:
    r: Any = redis_client or client()
    raw = r.get(history_key(kind, ident, tier_name))
    return series_from(raw, RANGES[tier_name], KIND_METRICS[kind], time.time() if now is None else now)


def history_delete(kind: str, ident: str | int, *, redis_client: Any = None) -> None:
    r = redis_client or client()
    r.delete(*[history_key(kind, ident, tier) for tier in RANGES], latest_key(kind, ident))


# ------------------------------------------------------------------------------------------------ latest values
@dataclass(frozen=True)
class Rates:
    """One VM over one interval. ``cpu_pct``: % of its own vCPUs (0–100); ``cpu_host_pct``: % of all the host's
    CPUs; memory is the guest's use at the end of the interval (``mem_pct`` of its current memory)."""

    cpu_pct: float | None = None
    cpu_host_pct: float | None = None
    mem_used_bytes: float | None = None
    mem_pct: float | None = None
    disk_rd_bps: float | None = None
    disk_wr_bps: float | None = None
    disk_rd_iops: float | None = None
    disk_wr_iops: float | None = None
    net_rx_bps: float | None = None
    net_tx_bps: float | None = None

    def values(self) -> tuple[float | None, ...]:
        """In :data:`METRICS` order."""
        return tuple(getattr(self, m) for m in METRICS)

    def as_dict(self) -> dict[str, Any]:
        return {m: None if getattr(self, m) is None else round(getattr(self, m), 3) for m in METRICS}


@dataclass(frozen=True, kw_only=True)
class Latest(Rates):
    """A VM's latest rates (``t``: when sampled, epoch seconds; ``host``: its host's id). ``None``: not measured
    yet (the first sample of a VM gives memory but no rates) or not reported by the guest."""

    t: int
    host: str
    vcpus: int = 0
    mem_bytes: int = 0  # current (balloon) memory

    def metric(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value

    def as_dict(self) -> dict[str, Any]:
        return {"t": self.t, "host": self.host, "vcpus": self.vcpus, "mem_bytes": self.mem_bytes,
                **{m: getattr(self, m) for m in METRICS}}


@dataclass(frozen=True)
class HostLatest:
    """A host's latest sample: CPU % over all its CPUs, memory used (total - free - buffers - cached)."""

    t: int
    cpu_pct: float | None
    mem_used_bytes: float | None
    mem_pct: float | None
    cpus: int
    mem_total_bytes: int
    vms_running: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def latest_write(host_id: str | int, t: float, vms: Mapping[str, Mapping[str, Any]], gone: Iterable[str],
                 host: HostLatest | None, *, ttl_ms: int, redis_client: Any = None) -> None:
    """Store the latest values of the running VMs of one host (and of the host), drop those of VMs that stopped."""
    r = redis_client or client()
    pipe = r.pipeline(transaction=False)
    for uuid, values in vms.items():
        pipe.set(latest_key(VM, uuid), json.dumps({"t": int(t), "host": str(host_id), **values}), px=ttl_ms)
    gone = list(gone)
    if gone:
        pipe.delete(*[latest_key(VM, uuid) for uuid in gone])
    if host is not None:
        pipe.set(latest_key(HOST, host_id), json.dumps(host.as_dict()), px=ttl_ms)
    pipe.execute()


_LATEST_FIELDS = {"t", "host", "vcpus", "mem_bytes", *METRICS}


def latest_read(uuids: Iterable[str], *, redis_client: Any = None) -> dict[str, Latest]:
    uuids = [str(u) for u in uuids]
    if not uuids:
        return {}
    r: Any = redis_client or client()
    out = {}
    for uuid, raw in zip(uuids, r.mget([latest_key(VM, u) for u in uuids]), strict=True):
        if raw:
            data = json.loads(raw)
            out[uuid] = Latest(**{k: v for k, v in data.items() if k in _LATEST_FIELDS})
    return out


def host_latest_read(host_id: str | int, *, redis_client: Any = None) -> HostLatest | None:
    r: Any = redis_client or client()
    raw = r.get(latest_key(HOST, host_id))
    return HostLatest(**json.loads(raw)) if raw else None
