"""VM list up to 10,000 VMs: the portal's page of 50 (HTML page, API, service) beside the bare bulk libvirt call
(``getAllDomainStats``, state only) measured in the same run, and beside a per-VM loop (lookup + info + XMLDesc per
VM) as a naive portal would do it.

For each N, defines N persistent, never-started domains on qemu:///system (names ``kvmwebbench-*``; set
``KVMWEB_BENCH_PREFIX`` to choose another start), measures the bulk call, the service, the page and the API
interleaved (A B C D, A B C D...; medians), counts their libvirt calls, and removes the domains at the end. The
last table holds the figures at the largest N against the targets of issue 17 — absolute, and as a ratio to the
same run's bulk call (the issue's targets were set when that call took 81 ms: ≤ 150 ms is 1.85× it, ≤ 120 ms 1.48×).
"""
from __future__ import annotations

import gc
import os
import shutil
import statistics
import time
import uuid
from collections.abc import Callable

import libvirt
from common import URI, django_setup, temp_dir

TMP = temp_dir("kvmwebbench-")
django_setup(TMP)

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from kvmweb import hypervisor as hv  # noqa: E402
import kvmweb.urls  # noqa: E402,F401
from kvmweb.machines.selectors import vm_list  # noqa: E402

gc.freeze()  # as kvmweb/asgi.py does in the web process once the application is loaded

PREFIX = os.environ.get("KVMWEB_BENCH_PREFIX", "kvmwebbench-") + "list-"
SIZES = [int(n) for n in os.environ.get("KVMWEB_BENCH_SIZES", "10,100,1000,10000").split(",")]
REPEAT = 9
PAGE = 50  # rows per page (KVMWEB_PAGE_SIZE default)
PER_VM_MAX = 1000  # the per-VM loop takes seconds beyond this: measured once there
# issue 17's targets at 10,000 VMs, and the bulk call's time when they were set
TARGETS = {"page": 150.0, "api": 120.0}
TARGET_BULK_MS = 81.0


def _define(conn: hv.Connection, count: int) -> None:
    existing = sum(1 for e in hv.domain_entries(conn) if e.name.startswith(PREFIX))
    for i in range(existing, count):
        hv.domain_define(conn, hv.DomainDocument.new(name=f"{PREFIX}{i:05d}", domain_type="qemu", memory_kib=65536,
                                                     uuid=str(uuid.uuid4())))


def _cleanup(conn: hv.Connection) -> None:
    for entry in hv.domain_entries(conn):
        if entry.name.startswith(PREFIX):
            hv.domain_lookup(conn, entry.uuid).undefine()


def _bulk(conn: hv.Connection) -> None:
    """The bare bulk call a listing needs at least: every domain with its state, nothing done with the answer."""
    conn.call(lambda c: c.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0))


def _per_vm_baseline(conn: hv.Connection) -> int:
    """What a naive portal does: list, then for every VM look it up, read info() and its XML."""
    doms = conn.call(lambda c: c.listAllDomains(0))
    for d in doms:
        uid = d.UUIDString()
        dom = conn.call(lambda c, u=uid: c.lookupByUUIDString(u))
        conn.run(dom.info)
        conn.run(lambda dom=dom: dom.XMLDesc(0))
    return len(doms)


def _interleaved(fns: dict[str, Callable[[], object]], repeat: int = REPEAT) -> dict[str, float]:
    """Median ms of each function, run in turn (A B C, A B C...) so that a busy moment hits them all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def _calls(conn: hv.Connection, fn: Callable[[], object]) -> int:
    before = conn.calls
    fn()
    return conn.calls - before


def main() -> list[dict[str, float]]:
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from kvmweb.hosts.models import Host
    from kvmweb.machines.services import vm_records_sync

    def service() -> None:
        """What the list page and the API do: the page's rows with state, vCPUs and memory, and the records made
        to match what libvirt listed."""
        vm_records_sync(vm_list(actor=staff, limit=PAGE).drift)

    def page() -> None:
        assert client.get("/vms/").status_code == 200

    def api() -> None:
        assert client.get(f"/api/v1/vms/?limit={PAGE}").status_code == 200

    staff = get_user_model().objects.create_user("bench", password="x", is_staff=True, is_superuser=True)
    Host.objects.create(name="local", uri=URI)
    client = Client()
    client.force_login(staff)
    conn = hv.registry.connection(URI)
    rows: list[dict[str, float]] = []
    try:
        for n in SIZES:
            _define(conn, n)
            total = len(hv.domain_entries(conn))
            service()  # the first read records the unowned VMs in the database
            page()
            api()
            row: dict[str, float] = {"N": n, "domains": total}
            row.update(_interleaved({"bulk": lambda: _bulk(conn), "service": service, "page": page, "api": api}))
            row.update({f"{k}_calls": _calls(conn, fn) for k, fn in
                        (("service", service), ("page", page), ("api", api))})
            row["baseline_calls"] = _calls(conn, lambda: _per_vm_baseline(conn))
            row["baseline"] = _interleaved({"b": lambda: _per_vm_baseline(conn)},
                                           repeat=3 if n <= PER_VM_MAX else 1)["b"]
            rows.append(row)
    finally:
        _cleanup(conn)
        shutil.rmtree(TMP, ignore_errors=True)
    return rows


def print_tables(rows: list[dict[str, float]]) -> None:
    print(f"\nVM list on {URI}, page of {PAGE}, staff (domains defined, never started; medians of {REPEAT}, "
          "interleaved; the per-VM loop of 3, of 1 above 1000)")
    print("| N VMs | bulk call (getAllDomainStats) | service | HTML page | API | page ÷ bulk | API ÷ bulk | "
          "per-VM loop | page vs per-VM | libvirt calls service / page / API | calls per-VM loop |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['N']:.0f} | {r['bulk']:.1f} ms | {r['service']:.1f} ms | {r['page']:.1f} ms | {r['api']:.1f} ms | "
              f"{r['page'] / r['bulk']:.2f}× | {r['api'] / r['bulk']:.2f}× | {r['baseline']:.0f} ms | "
              f"{r['baseline'] / r['page']:.1f}× faster | {r['service_calls']:.0f} / {r['page_calls']:.0f} / "
              f"{r['api_calls']:.0f} | {r['baseline_calls']:.0f} |")
    last = rows[-1]
    print(f"\nTargets at {last['N']:.0f} VMs (issue 17), measured in this run beside its bulk call "
          f"({last['bulk']:.1f} ms; {TARGET_BULK_MS:.0f} ms when the targets were set)")
    print("| figure | target | measured | ratio to the bulk call | target ratio | met |")
    print("|---|---:|---:|---:|---:|---|")
    for key, label in (("page", "HTML page, page of 50"), ("api", "API ?limit=50")):
        target, measured = TARGETS[key], last[key]
        ratio, target_ratio = measured / last["bulk"], TARGETS[key] / TARGET_BULK_MS
        met = ("yes" if measured <= target else "ratio only" if ratio <= target_ratio else "no")
        print(f"| {label} | ≤ {target:.0f} ms | {measured:.1f} ms | {ratio:.2f}× | ≤ {target_ratio:.2f}× | {met} |")
    sizes = ", ".join(f"{r['N']:.0f}" for r in rows)
    counts = ", ".join(f"{r['page_calls']:.0f} / {r['api_calls']:.0f}" for r in rows)
    constant = len({r["page_calls"] for r in rows}) == 1 and len({r["api_calls"] for r in rows}) == 1
    print(f"| libvirt calls, page / API, at N = {sizes} | constant | {counts} | | | {'yes' if constant else 'no'} |")


if __name__ == "__main__":
    print_tables(main())
