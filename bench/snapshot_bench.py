"""Snapshots of a running guest through the portal beside ``virsh`` on the same VM, in the same run.

A TCG memtest86+ guest (96 MiB, its tests running so every page of its memory is in use) with a qcow2 disk in a pool
of the bench's own: an internal snapshot WITH its memory — the portal's ``snapshot_create`` service and its
``snapshot.create`` job in-process (Celery eager: permission, checks, quota, audit, job record, progress and log
included) against ``virsh snapshot-create-as VM NAME`` — and a revert of the running guest to a snapshot taken at
the start — ``snapshot_revert(confirm=True)`` and its ``snapshot.revert`` job against ``virsh snapshot-revert VM
NAME``. N runs after one warm-up round, alternating A B / B A; each timed step starts from a settled page cache
(``sync`` before, untimed); each round's creates come after an untimed snapshot taken and deleted (QEMU's first
snapshot after a revert takes several times longer than the next ones, whoever asks); medians; target ≤ 1.2×
virsh's time. The snapshots a round makes are deleted (untimed) before its reverts,
so that the disk does not grow.

Run: ``.venv/bin/python bench/snapshot_bench.py`` (``KVMWEB_BENCH_RUNS``, default 9). Everything it makes is named
``kvmwebbench-*`` and removed at the end.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from common import URI, django_setup, pool_remove, temp_dir, virsh as _virsh

TMP = temp_dir("kvmwebbench-snap-")
django_setup(TMP, KVMWEB_CHANNEL_PREFIX=f"kvmwebbench-{os.getpid()}:")

from django.core.management import call_command  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from kvmweb import hypervisor as hv  # noqa: E402

RUNS = int(os.environ.get("KVMWEB_BENCH_RUNS", "9"))
POOL = f"kvmwebbench-snap-{os.getpid()}"
VM = f"kvmwebbench-snap-{os.getpid()}"
MEMTEST_ISO = "/usr/lib/memtest86+/memtest86+x64.iso"


def virsh(*args: str, check: bool = True) -> str:
    return _virsh(*args, check=check, timeout=300)


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes, from a settled page cache (``sync`` before, untimed): what the previous step left to
    write out would otherwise land on whichever side comes next."""
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def guest(host: object, staff: object, disk: str) -> object:
    from kvmweb.machines.services import vm_define, vm_start

    doc = hv.DomainDocument.new(name=VM, domain_type="qemu", memory_kib=96 * 1024, vcpus=1, boot=(),
                                uuid=str(uuid.uuid4()))
    doc.add_device(hv.Disk.new(target="sda", device="cdrom", bus="sata", source=MEMTEST_ISO, format="raw",
                               shared_media=True, boot_order=1))
    doc.add_device(hv.Disk.new(target="vda", bus="virtio", source=disk, format="qcow2", boot_order=2))
    doc.add_device(hv.Graphics.vnc(listen="none"))
    doc.add_device(hv.Video.new())
    vm = vm_define(actor=staff, host=host, doc=doc)  # type: ignore[arg-type]
    vm_start(actor=staff, vm=vm)  # type: ignore[arg-type]
    time.sleep(8)  # memtest's menu
    virsh("send-key", VM, "KEY_ENTER")  # start testing: the guest's whole memory is in use from now on
    time.sleep(5)
    return vm


def main() -> None:
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from kvmweb.celery import app
    from kvmweb.hosts.models import Host
    from kvmweb.jobs.models import Job
    from kvmweb.protection import snapshots

    app.conf.task_always_eager = True  # the job runs in this process when queued
    staff = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex, is_staff=True,
                                                 is_superuser=True)
    host = Host.objects.create(name="local", uri=URI, domain_type="qemu")
    (TMP / "pool").mkdir()
    virsh("pool-define-as", POOL, "dir", "--target", str(TMP / "pool"))
    virsh("pool-start", POOL)
    times: dict[str, list[float]] = {"portal create": [], "virsh create": [], "portal revert": [],
                                     "virsh revert": []}
    try:
        virsh("vol-create-as", POOL, f"{VM}.qcow2", "1G", "--format", "qcow2")
        vm = guest(host, staff, str(TMP / "pool" / f"{VM}.qcow2"))
        virsh("snapshot-create-as", VM, "kvmwebbench-base")

        def portal_create(name: str) -> None:
            job = snapshots.snapshot_create(actor=staff, vm=vm, name=name, memory=True)  # type: ignore[arg-type]
            job.refresh_from_db()
            assert job.state == Job.State.SUCCEEDED, job.error

        def portal_revert() -> None:
            job = snapshots.snapshot_revert(actor=staff, vm=vm, name="kvmwebbench-base", confirm=True)  # type: ignore[arg-type]
            job.refresh_from_db()
            assert job.state == Job.State.SUCCEEDED, job.error

        def settle() -> None:
            """QEMU's first snapshot after a revert takes several times longer than the next ones, whoever asks:
            an untimed snapshot (deleted at once) takes that cost before each round's timed creates."""
            virsh("snapshot-create-as", VM, "kvmwebbench-settle")
            virsh("snapshot-delete", VM, "kvmwebbench-settle")

        for i in range(-1, RUNS):  # round -1: warm-up, not counted
            a, b = f"kvmwebbench-a{i + 1}", f"kvmwebbench-b{i + 1}"
            steps: list[tuple[str, Callable[[], object]]] = [
                ("portal create", lambda a=a: portal_create(a)),
                ("virsh create", lambda b=b: virsh("snapshot-create-as", VM, b)),
                ("portal revert", portal_revert),
                ("virsh revert", lambda: virsh("snapshot-revert", VM, "kvmwebbench-base")),
            ]
            if i % 2:  # B A in every other round: neither side always follows the other's work
                steps = [steps[1], steps[0], steps[3], steps[2]]
            settle()
            round_times = {key: timed(fn) for key, fn in steps[:2]}
            for name in (a, b):
                virsh("snapshot-delete", VM, name)
            round_times.update({key: timed(fn) for key, fn in steps[2:]})
            if i >= 0:
                for key, value in round_times.items():
                    times[key].append(value)
            print(f"round {i + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in round_times.items()), file=sys.stderr)
    finally:
        virsh("destroy", VM, check=False)
        virsh("undefine", VM, "--snapshots-metadata", check=False)
        pool_remove(POOL)
        shutil.rmtree(TMP, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print()
    print(f"Snapshot benchmark ({URI}, TCG memtest86+ guest with 96 MiB, {os.cpu_count()} CPUs; medians of {RUNS} "
          "alternating runs)")
    print()
    print("| what | portal (service + job, in-process) | virsh | ratio | target |")
    print("|---|---|---|---|---|")
    for what, key, tool in (("snapshot with memory of a running guest", "create", "snapshot-create-as"),
                            ("revert of a running guest (with memory)", "revert", "snapshot-revert")):
        portal, base = med[f"portal {key}"], med[f"virsh {key}"]
        print(f"| {what} | {portal:.2f} s | virsh {tool}: {base:.2f} s | {portal / base:.2f}× | ≤ 1.2× |")
    print()
    print("raw times (s): " + "; ".join(f"{k}: {', '.join(f'{t:.2f}' for t in v)}" for k, v in times.items()))


if __name__ == "__main__":
    main()
