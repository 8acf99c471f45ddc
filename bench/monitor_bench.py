"""Monitoring: where the usage history lives (chosen by this measurement) and what the collector costs.

For N VMs (1000): the write cost of one sample of every VM into each tier (1 h, 1 day, 30 days), the bytes one VM's
history takes and the read of a 30-day graph, for (a) the portal's round-robin records in Redis (SETRANGE into one
fixed-size string per VM and tier), (b) the same records as rows of an SQLite table (uuid, tier, slot) written with
upserts in one transaction, (c) RRD files, when the `rrdtool` module is importable. Then the collector on libvirt's
test driver with N defined, never-started domains: ms per sample, share of one core at the 5 s interval, libvirt
calls per sample, beside a per-domain loop (list, then each domain's info, and for running ones its XML and memory,
block and interface stats). Redis keys live under a `kvmwebbench:` prefix and are deleted at the end.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid as uuid_mod
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="kvmweb-bench-")
atexit.register(shutil.rmtree, _tmp, True)
os.environ.setdefault("KVMWEB_DATABASE_URL", f"sqlite://{_tmp}/bench.sqlite3")
os.environ.setdefault("KVMWEB_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmweb.settings")
os.environ["KVMWEB_STATS_PREFIX"] = f"kvmwebbench:{os.getpid()}:stats:"

import django  # noqa: E402

django.setup()

from kvmweb import hypervisor as hv  # noqa: E402
from kvmweb.monitoring import store  # noqa: E402
from kvmweb.monitoring.collector import Collector  # noqa: E402
from kvmweb.monitoring.store import METRICS, RANGES, VM, HistoryWriter  # noqa: E402

N = int(os.environ.get("KVMWEB_BENCH_VMS", "1000"))
SAMPLES = 15  # samples timed per store
INTERVAL = 5
T0 = 1_800_000_000
TEST_URI = "test:///default"
SYSTEM_URI = "qemu:///system"
PREFIX = "kvmwebbench-"


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def _values(i: int) -> tuple[float | None, ...]:
    return tuple(float((i * 7 + j) % 100) for j in range(len(METRICS)))


# ------------------------------------------------------------------------------------------------ (a) Redis
def bench_redis(uuids: list[str]) -> dict[str, float]:
    r = store.client()
    writer = HistoryWriter(VM)
    start = time.perf_counter()
    first_commands = writer.write(T0, {u: _values(i) for i, u in enumerate(uuids)})
    first_ms = (time.perf_counter() - start) * 1000
    times, commands = [], 0
    for k in range(1, SAMPLES + 1):
        batch = {u: _values(i + k) for i, u in enumerate(uuids)}
        start = time.perf_counter()
        commands = writer.write(T0 + k * INTERVAL, batch)
        times.append(time.perf_counter() - start)
    # one VM's rings filled to their full length (the last slot of every tier written)
    full = str(uuid_mod.uuid4())
    w = HistoryWriter(VM)
    for tier in RANGES.values():
        w.write((tier.slots - 1) * tier.step, {full: _values(1)})
    strlen = sum(r.strlen(store.history_key(VM, full, t)) for t in RANGES)
    usage = sum(int(r.memory_usage(store.history_key(VM, full, t)) or 0) for t in RANGES)
    read_times = []
    for _ in range(9):
        start = time.perf_counter()
        store.history_read(VM, full, "30d", now=(RANGES["30d"].slots - 1) * RANGES["30d"].step)
        read_times.append(time.perf_counter() - start)
    return {"write_ms": _median_ms(times), "first_ms": first_ms, "first_commands": first_commands,
            "commands": commands, "bytes_per_vm": strlen, "redis_bytes_per_vm": usage,
            "read_ms": _median_ms(read_times)}


# ------------------------------------------------------------------------------------------------ (b) SQLite
_COLS = ", ".join(f"v{i} REAL" for i in range(len(METRICS)))
_SQL_CREATE = (f"CREATE TABLE samples (uuid TEXT NOT NULL, tier TEXT NOT NULL, slot INTEGER NOT NULL, "
               f"period INTEGER NOT NULL, n INTEGER NOT NULL, {_COLS}, PRIMARY KEY (uuid, tier, slot)) WITHOUT ROWID")
_SQL_UPSERT = (f"INSERT INTO samples VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(METRICS))}) "
               f"ON CONFLICT (uuid, tier, slot) DO UPDATE SET period = excluded.period, n = excluded.n, "
               + ", ".join(f"v{i} = excluded.v{i}" for i in range(len(METRICS))))


def _sqlite_rows(writer_acc: dict[tuple[str, str], store.Record], uuids: list[str], t: float,
                 k: int) -> list[tuple[object, ...]]:
    """The same consolidated records the Redis store writes, as rows."""
    rows = []
    for i, u in enumerate(uuids):
        floats = store.to_floats(_values(i + k))
        for name, tier in RANGES.items():
            period = int(t // tier.step)
            rec = store.consolidate(writer_acc.get((u, name)), period, floats)
            writer_acc[(u, name)] = rec
            rows.append((u, name, period % tier.slots, rec.period, rec.n, *rec.values))
    return rows


def bench_sqlite(uuids: list[str], synchronous: str) -> dict[str, float]:
    path = Path(_tmp) / f"history-{synchronous}.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(_SQL_CREATE)
    acc: dict[tuple[str, str], store.Record] = {}
    times = []
    for k in range(SAMPLES + 1):
        rows = _sqlite_rows(acc, uuids, T0 + k * INTERVAL, k)
        start = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(_SQL_UPSERT, rows)
        db.execute("COMMIT")
        if k:
            times.append(time.perf_counter() - start)
    # bytes per VM: 20 VMs with every slot of every tier filled, the database's pages divided among them
    db.execute("DELETE FROM samples")
    db.execute("VACUUM")
    full = [str(uuid_mod.uuid4()) for _ in range(20)]
    db.execute("BEGIN")
    for name, tier in RANGES.items():
        db.executemany(_SQL_UPSERT, [(u, name, s, s, 1, *store.to_floats(_values(s))) for u in full
                                     for s in range(tier.slots)])
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    read_times = []
    for _ in range(9):
        start = time.perf_counter()
        db.execute("SELECT * FROM samples WHERE uuid = ? AND tier = '30d' ORDER BY slot", (full[0],)).fetchall()
        read_times.append(time.perf_counter() - start)
    db.close()
    return {"write_ms": _median_ms(times), "commands": len(uuids) * len(RANGES), "bytes_per_vm": pages / len(full),
            "read_ms": _median_ms(read_times)}


# ------------------------------------------------------------------------------------------------ (d) collector
def _per_domain_loop(conn: hv.Connection) -> int:
    """What a collector without bulk stats does: list, then per domain its info (state, CPU time), and for running
    ones the XML (to find disks and NICs), memory stats and block/interface stats per device."""
    doms = conn.call(lambda c: c.listAllDomains(0))
    for d in doms:
        state, *_rest = conn.run(d.info)
        if state in (1, 2, 3):
            doc = hv.DomainDocument.from_xml(conn.run(lambda d=d: d.XMLDesc(0)))
            conn.run(d.memoryStats)
            for disk in doc.disks:
                if disk.target:
                    conn.run(lambda d=d, t=disk.target: d.blockStats(t))
            for nic in doc.interfaces:
                target = nic.info().target
                if target:
                    conn.run(lambda d=d, t=target: d.interfaceStats(t))
    return len(doms)


def bench_collector() -> dict[str, float]:
    conn = hv.registry.connection(TEST_URI)
    existing = sum(1 for r in hv.domain_list(conn, sizes=False) if r.name.startswith(PREFIX))
    for i in range(existing, N):
        hv.domain_define(conn, hv.DomainDocument.new(name=f"{PREFIX}{i:05d}", domain_type="test", memory_kib=65536,
                                                     uuid=str(uuid_mod.uuid4())))
    try:
        collector = Collector(TEST_URI, "bench", interval=INTERVAL)
        collector.sample_once()
        wall, cpu, calls = [], [], 0
        for _ in range(SAMPLES):
            start, start_cpu = time.perf_counter(), time.process_time()
            sample = collector.sample_once()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            calls = sample.libvirt_calls
        domains = sample.domains
        before = conn.calls
        _per_domain_loop(conn)
        loop_calls = conn.calls - before
        loop = []
        for _ in range(5):
            start = time.perf_counter()
            _per_domain_loop(conn)
            loop.append(time.perf_counter() - start)
        # every domain running: the whole sample (rates, 3000 ring writes, 1000 latest values, the published rows)
        for row in hv.domain_list(conn, sizes=False):
            if row.name.startswith(PREFIX):
                hv.domain_lookup(conn, row.uuid).start()
        collector.sample_once()
        run_wall, run_cpu, run_redis = [], [], 0
        for _ in range(SAMPLES):
            start, start_cpu = time.perf_counter(), time.process_time()
            sample = collector.sample_once()
            run_wall.append(time.perf_counter() - start)
            run_cpu.append(time.process_time() - start_cpu)
            run_redis = sample.redis_commands
        running, run_calls = len(sample.rows), sample.libvirt_calls
    finally:
        for row in hv.domain_list(conn, sizes=False):
            if row.name.startswith(PREFIX):
                dom = hv.domain_lookup(conn, row.uuid)
                if row.state.is_active:
                    dom.destroy()
                dom.undefine()
    return {"domains": domains, "ms": _median_ms(wall), "cpu_ms": _median_ms(cpu), "calls": calls,
            "loop_ms": _median_ms(loop), "loop_calls": loop_calls, "rpc_ms": _rpc_ms(), "running": running,
            "run_ms": _median_ms(run_wall), "run_cpu_ms": _median_ms(run_cpu), "run_calls": run_calls,
            "run_redis": run_redis}


def _rpc_ms() -> float | None:
    """One small libvirt call over the daemon's socket (``virsh nodeinfo``) on qemu:///system, median: the test
    driver answers in-process, a real host answers every call over a socket. Nothing is defined there (other test
    runs on this machine list its domains)."""
    try:
        conn = hv.registry.connection(SYSTEM_URI)
        conn.call(lambda c: c.getInfo())
    except hv.HypervisorError:
        return None
    times = []
    for _ in range(51):
        start = time.perf_counter()
        conn.call(lambda c: c.getInfo())
        times.append(time.perf_counter() - start)
    return _median_ms(times)


def _forget_keys() -> None:
    """Delete every Redis key this run made (the rings of its VMs, the collector's latest values and lease)."""
    r = store.client()
    keys = list(r.scan_iter(match=f"{store.prefix()}*", count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i:i + 1000])


def main() -> None:
    uuids = [str(uuid_mod.uuid4()) for _ in range(N)]
    atexit.register(_forget_keys)
    red = bench_redis(uuids)
    _forget_keys()
    lite = bench_sqlite(uuids, "NORMAL")
    lite_full = bench_sqlite(uuids, "FULL")
    tiers = ", ".join(f"{name}: {t.slots} × {t.step} s" for name, t in RANGES.items())
    print(f"\nHistory of {N} VMs, one sample of every VM written into 3 tiers ({tiers}); "
          f"{len(METRICS)} metrics; median of {SAMPLES} samples")
    print("| store | write one sample of all VMs | per VM | commands or rows per sample | bytes per VM (full rings) "
          "| read a VM's 30-day graph |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| Redis round-robin (SETRANGE, one pipeline) | {red['write_ms']:.1f} ms | "
          f"{red['write_ms'] * 1000 / N:.0f} µs | {red['commands']:.0f} | {red['bytes_per_vm'] / 1024:.1f} KiB "
          f"(Redis MEMORY USAGE {red['redis_bytes_per_vm'] / 1024:.1f} KiB) | {red['read_ms']:.2f} ms |")
    print(f"| SQLite upserts, WAL, synchronous=NORMAL | {lite['write_ms']:.1f} ms | "
          f"{lite['write_ms'] * 1000 / N:.0f} µs | {lite['commands']:.0f} | {lite['bytes_per_vm'] / 1024:.1f} KiB "
          f"| {lite['read_ms']:.2f} ms |")
    print(f"| SQLite upserts, WAL, synchronous=FULL | {lite_full['write_ms']:.1f} ms | "
          f"{lite_full['write_ms'] * 1000 / N:.0f} µs | {lite_full['commands']:.0f} | "
          f"{lite_full['bytes_per_vm'] / 1024:.1f} KiB | {lite_full['read_ms']:.2f} ms |")
    try:
        import rrdtool  # type: ignore[import-not-found]  # noqa: F401
        print("| RRD files | rrdtool is importable, but this benchmark does not measure it yet | | | | |")
    except ImportError:
        print("\nRRD files: not measured — the `rrdtool` Python module is not installed, and was not added: it is a C "
              "extension (librrd), it keeps one file per VM on each collector's own disk (the web processes on other "
              "machines could not read it: no remote access), and it needs a file per VM per host to be moved or "
              "deleted with the VM.")
    print(f"(The first sample after a collector starts also reads each ring's current slot: "
          f"{red['first_ms']:.1f} ms, {red['first_commands']:.0f} commands in 2 pipelines.)")

    col = bench_collector()
    print(f"\nCollector on {TEST_URI}, {col['domains']} domains defined, never started; median of {SAMPLES}")
    print("| collector | per sample (wall) | CPU per sample | share of one core at a 5 s interval "
          "| libvirt calls per sample |")
    print("|---|---:|---:|---:|---:|")
    print(f"| portal (one getAllDomainStats + host CPU/memory) | {col['ms']:.1f} ms | {col['cpu_ms']:.1f} ms | "
          f"{col['cpu_ms'] / (INTERVAL * 1000) * 100:.2f} % | {col['calls']:.0f} |")
    print(f"| per-domain loop (list + info per domain) | {col['loop_ms']:.1f} ms | | "
          f"{col['loop_ms'] / (INTERVAL * 1000) * 100:.2f} % | {col['loop_calls']:.0f} |")
    print(f"| portal, all {col['running']} running (rates, history, latest values, published rows) | "
          f"{col['run_ms']:.1f} ms | {col['run_cpu_ms']:.1f} ms | {col['run_cpu_ms'] / (INTERVAL * 1000) * 100:.2f} % | "
          f"{col['run_calls']:.0f} ¹ |")
    print(f"\n¹ the test driver's bulk stats hold no CPU time or memory: one info() per running domain fills them "
          f"(real drivers: none, 5 calls whatever the number of domains). Redis: {col['run_redis']:.0f} commands in "
          f"3 pipelined round trips per sample.")
    if col["rpc_ms"] is not None:
        rpc = col["rpc_ms"]
        print(f"\nOn a real host every call crosses libvirtd's socket: one small call on {SYSTEM_URI} takes "
              f"{rpc:.2f} ms (median of 51), so the per-domain loop would spend about "
              f"{col['loop_calls'] * rpc:.0f} ms per sample in round trips alone for {col['domains']} domains "
              f"({col['loop_calls'] * rpc / (INTERVAL * 1000) * 100:.0f} % of the interval); the portal's "
              f"{col['calls']:.0f} calls, about {col['calls'] * rpc:.1f} ms plus the size of one answer.")


if __name__ == "__main__":
    main()
