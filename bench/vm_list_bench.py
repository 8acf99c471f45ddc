"""VM list: the portal's bulk listing vs a per-VM loop (lookup + info + XMLDesc per VM), in the same run.

Defines N persistent, never-started domains on qemu:///system (names ``kvmwebbench-*``), measures, removes them.
"""
from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="kvmweb-bench-")
atexit.register(shutil.rmtree, _tmp, True)  # the bench database goes with the run
os.environ.setdefault("KVMWEB_DATABASE_URL", f"sqlite://{_tmp}/bench.sqlite3")
os.environ.setdefault("KVMWEB_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmweb.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from kvmweb import hypervisor as hv  # noqa: E402

URI = os.environ.get("KVMWEB_BENCH_URI", "qemu:///system")
PREFIX = "kvmwebbench-"
SIZES = [int(n) for n in os.environ.get("KVMWEB_BENCH_SIZES", "10,100,1000").split(",")]
REPEAT = 9
PAGE = 50  # rows per page (KVMWEB_PAGE_SIZE default)


def _median_ms(fn, repeat: int = REPEAT) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _define(conn: hv.Connection, count: int) -> None:
    existing = sum(1 for r in hv.domain_list(conn, sizes=False) if r.name.startswith(PREFIX))
    for i in range(existing, count):
        hv.domain_define(conn, hv.DomainDocument.new(name=f"{PREFIX}{i:05d}", domain_type="qemu", memory_kib=65536,
                                                     uuid=str(uuid.uuid4())))


def _cleanup(conn: hv.Connection) -> None:
    for row in hv.domain_list(conn, sizes=False):
        if row.name.startswith(PREFIX):
            hv.domain_lookup(conn, row.uuid).undefine()


def _per_vm_baseline(conn: hv.Connection) -> int:
    """What a naive portal does: list, then for every VM look it up, read info() and its XML."""
    doms = conn.call(lambda c: c.listAllDomains(0))
    for d in doms:
        uid = d.UUIDString()
        dom = conn.call(lambda c, u=uid: c.lookupByUUIDString(u))
        conn.run(dom.info)
        conn.run(lambda dom=dom: dom.XMLDesc(0))
    return len(doms)


def main() -> list[dict[str, object]]:
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from kvmweb.hosts.models import Host
    from kvmweb.machines.selectors import vm_list
    from kvmweb.machines.services import vm_records_sync

    def portal_list() -> None:
        """What the list page and the API do: every row's state, vCPUs and memory for the page shown, and the
        records made to match what libvirt listed."""
        vm_records_sync(vm_list(actor=staff, limit=PAGE).drift)

    staff = get_user_model().objects.create_user("bench", password="x", is_staff=True, is_superuser=True)
    Host.objects.create(name="local", uri=URI)
    client = Client()
    client.force_login(staff)
    conn = hv.registry.connection(URI)
    rows: list[dict[str, object]] = []
    try:
        for n in SIZES:
            _define(conn, n)
            total = len(hv.domain_list(conn, sizes=False))
            portal_list()  # the first read records the unowned VMs in the database
            before = conn.calls
            portal_list()
            portal_calls = conn.calls - before
            portal_ms = _median_ms(portal_list)
            page_ms = _median_ms(lambda: client.get("/vms/"))
            assert client.get("/vms/").status_code == 200
            before = conn.calls
            _per_vm_baseline(conn)
            baseline_calls = conn.calls - before
            baseline_ms = _median_ms(lambda: _per_vm_baseline(conn), repeat=3)
            rows.append({
                "N": n, "domains": total, "portal_ms": portal_ms, "page_ms": page_ms, "baseline_ms": baseline_ms,
                "speedup": baseline_ms / portal_ms, "portal_calls": portal_calls, "baseline_calls": baseline_calls,
            })
    finally:
        _cleanup(conn)
    return rows


def print_table(rows: list[dict[str, object]]) -> None:
    print(f"\nVM list on {URI} (domains defined, never started; median of {REPEAT})")
    print("| N VMs | portal list (service, page of 50) | portal HTML page | per-VM baseline | portal vs baseline | libvirt calls portal | calls baseline |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['N']} | {r['portal_ms']:.1f} ms | {r['page_ms']:.1f} ms | {r['baseline_ms']:.1f} ms | "
              f"{r['speedup']:.1f}× faster | {r['portal_calls']} | {r['baseline_calls']} |")


if __name__ == "__main__":
    print_table(main())
