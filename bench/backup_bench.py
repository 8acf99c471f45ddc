"""Benchmark: backup throughput through the portal's service beside ``qemu-img convert`` of the same disk, same run.

A 2 GiB qcow2 holding 1.5 GiB of data (written with ``qemu-io`` in 64 MiB runs of different byte patterns: every
cluster allocated, nothing sparse) is backed up three ways, interleaved A B C after one warm-up round of each:

A. live: the disk of a RUNNING TCG memtest guest, through ``backup_create`` → the ``backup.create`` job (libvirt's
   backup job in push mode, progress polled from the domain job), run in-process with Celery eager as
   create_bench does;
B. copy: the same data on a shut-off guest, through the same service (a ``vol-clone`` into the backup pool, the
   job's progress poller reading the new volume);
C. ``qemu-img convert -O qcow2`` of that disk into the same folder.

Each copy starts from a settled page cache (``sync`` before, untimed) and counts as done when its data is written
out (``sync`` after, timed), for all sides alike. Medians; throughput ratio portal / qemu-img (target ≥ 0.8).

What bounds A: QEMU's own backup job (block-copy in the QEMU process, beside the guest's vCPU thread — a TCG guest
keeps one of the machine's cores busy) is slower than ``qemu-img convert`` even with the guest paused (about 2× on
the development machine); libvirt 9.0 offers no setting of the job's chunk size or workers, and no speed limit is
set. B is libvirt's ``createXMLFrom`` (``qemu-img convert`` run by libvirtd) and matches the baseline.

Run: ``.venv/bin/python bench/backup_bench.py [--rounds N]``. Everything it makes (pools, guests, volumes, a
temporary database) is named ``kvmwebbench-*`` and removed at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import URI, django_setup, pool_remove, temp_dir, virsh as _virsh

TMP = temp_dir("kvmwebbench-")
PID = os.getpid()
django_setup(TMP, KVMWEB_CHANNEL_PREFIX=f"kvmwebbench-{PID}:", KVMWEB_BACKUP_POOL=f"kvmwebbench-backups-{PID}",
             KVMWEB_BACKUP_DIR=str(TMP / "backups"),
             KVMWEB_BACKUP_KEEP="1000")  # the bench deletes its backups itself

from django.core.management import call_command  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from kvmweb import hypervisor as hv  # noqa: E402

POOL = f"kvmwebbench-src-{PID}"
G, M = 1024**3, 1024**2
DATA = 3 * G // 2
MEMTEST = "/usr/lib/memtest86+/memtest86+x64.iso"


def virsh(*args: str, check: bool = True) -> str:
    return _virsh(*args, check=check, timeout=300)


def write_source(path: Path) -> None:
    """2 GiB qcow2, its first 1.5 GiB written in 64 MiB runs of patterns 0x01, 0x02...: allocated, not zeros."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "2G"], check=True)
    cmds: list[str] = []
    for i in range(DATA // (64 * M)):
        cmds += ["-c", f"write -P {i % 250 + 1} {i * 64}M 64M"]
    subprocess.run(["qemu-io", "-f", "qcow2", *cmds, str(path)], check=True, capture_output=True)


def guest(name: str, disk: str) -> hv.DomainDocument:
    doc = hv.DomainDocument.new(name=name, domain_type="qemu", memory_kib=96 * 1024, vcpus=1, boot=(),
                                uuid=str(uuid.uuid4()))
    doc.add_device(hv.Disk.new(target="sda", device="cdrom", bus="sata", source=MEMTEST, format="raw",
                               shared_media=True, boot_order=1))
    doc.add_device(hv.Disk.new(target="vda", bus="virtio", source=disk, format="qcow2", boot_order=2))
    doc.add_device(hv.Graphics.vnc(listen="none"))
    doc.add_device(hv.Video.new())
    return doc


def portal_backup(actor: object, vm: object) -> float:
    from kvmweb.jobs.models import Job
    from kvmweb.protection.backups import backup_create, backup_delete
    from kvmweb.protection.models import Backup

    os.sync()
    start = time.perf_counter()
    job = backup_create(actor=actor, vm=vm)  # type: ignore[arg-type]
    os.sync()
    elapsed = time.perf_counter() - start
    job = Job.objects.get(pk=job.pk)
    if job.state != "succeeded":
        raise RuntimeError(f"backup job {job.pk} {job.state}: {job.error}")
    backup_delete(actor=actor, backup=Backup.objects.get(pk=job.result["backup_id"]))  # type: ignore[arg-type]
    return elapsed


def qemu_img_convert(src: Path) -> float:
    dst = TMP / "backups" / "convert.qcow2"
    os.sync()
    start = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(src), str(dst)], check=True)
    os.sync()
    elapsed = time.perf_counter() - start
    dst.unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from kvmweb.celery import app
    from kvmweb.hosts.models import Host
    from kvmweb.machines.services import vm_define, vm_start
    from kvmweb.protection.backups import backup_pool

    app.conf.task_always_eager = True
    staff = get_user_model().objects.create_user("bench", is_staff=True, is_superuser=True)
    host = Host.objects.create(name="local", uri=URI, domain_type="qemu")
    folder = TMP / "src"
    folder.mkdir()
    names = [f"kvmwebbench-backup-live-{PID}", f"kvmwebbench-backup-off-{PID}"]
    try:
        virsh("pool-define-as", POOL, "dir", "--target", str(folder))
        virsh("pool-start", POOL)
        live_disk, off_disk = folder / "live.qcow2", folder / "off.qcow2"
        write_source(off_disk)
        shutil.copyfile(off_disk, live_disk)
        virsh("pool-refresh", POOL)
        backup_pool(host)
        running = vm_define(actor=staff, host=host, doc=guest(names[0], str(live_disk)))
        stopped = vm_define(actor=staff, host=host, doc=guest(names[1], str(off_disk)))
        vm_start(actor=staff, vm=running)
        times: dict[str, list[float]] = {"live": [], "copy": [], "convert": []}
        for r in range(args.rounds + 1):
            live, copy, convert = portal_backup(staff, running), portal_backup(staff, stopped), qemu_img_convert(off_disk)
            if r:  # round 0 warms up
                times["live"].append(live)
                times["copy"].append(copy)
                times["convert"].append(convert)
            print(f"round {r}: live {live:.2f}s, copy {copy:.2f}s, qemu-img convert {convert:.2f}s", file=sys.stderr)
        base = statistics.median(times["convert"])
        print(f"\nBackup of a 2 GiB qcow2 with 1.5 GiB of data, medians of {args.rounds} interleaved rounds\n")
        print("| way | median s | MiB/s | throughput vs qemu-img convert | target |")
        print("|---|---:|---:|---:|---|")
        for key, label in (("live", "portal, running guest (backup-begin push mode)"),
                           ("copy", "portal, shut-off guest (copy)"), ("convert", "`qemu-img convert -O qcow2`")):
            t = statistics.median(times[key])
            ratio = base / t
            target = "" if key == "convert" else ("≥ 0.8 ✓" if ratio >= 0.8 else "≥ 0.8 ✗")
            print(f"| {label} | {t:.2f} | {DATA / M / t:.0f} | {ratio:.2f}× | {target} |")
    finally:
        for name in names:
            virsh("destroy", name, check=False)
            virsh("undefine", name, check=False)
        for pool in (POOL, os.environ["KVMWEB_BACKUP_POOL"]):
            pool_remove(pool)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
