"""Benchmark: disk cloning through the portal's hypervisor layer beside qemu-img, in the same run.

1. Full clone of a 2 GiB qcow2 holding 1.5 GiB of random data: ``Pool.clone_volume`` (libvirt's createXMLFrom,
   what the clone job runs, with the job's progress poller reading the new volume every 0.5 s) against
   ``qemu-img convert -O qcow2`` of the same image. Interleaved A B A B after one warm-up round of each; medians;
   throughput ratio (target ≥ 0.8). Each copy starts from a settled page cache (``sync`` before, untimed) and
   counts as done when its data is written out (``sync`` after, timed) — for both sides alike: page-cache writes on
   these machines swing ~10× between runs otherwise.
2. Linked clone (``Pool.create_overlay``: a qcow2 overlay) of a 1 GiB and of a 20 GiB source: median time, and the
   ratio 20 GiB / 1 GiB (target ≤ 1.2: flat, whatever the source size).

Run: ``.venv/bin/python bench/clone_bench.py [--rounds N] [--uri qemu:///system]``. It makes its own directory
pool in a temporary folder and removes it (and every file in it) at the end.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kvmweb import hypervisor as hv  # noqa: E402

G = 1024**3
M = 1024**2
DATA = 3 * G // 2


def _write_source(pool: hv.Pool, folder: str) -> hv.Volume:
    """src.qcow2: 2 GiB virtual, the first 1.5 GiB random bytes (incompressible, all clusters allocated)."""
    raw = os.path.join(folder, "seed.raw")
    chunk = 64 * M
    with open(raw, "wb") as f:
        for _ in range(DATA // chunk):
            f.write(os.urandom(chunk))
        f.truncate(2 * G)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, os.path.join(folder, "src.qcow2")],
                   check=True)
    os.unlink(raw)
    pool.refresh()
    return pool.volume("src.qcow2")


def _poll(pool: hv.Pool, name: str, stop: threading.Event) -> None:
    """What the clone job does meanwhile: read the new volume's allocation every 0.5 s."""
    while not stop.wait(0.5):
        try:
            pool.volume(name).info(pool=pool.name)
        except hv.HypervisorError:
            pass


def portal_full_clone(pool: hv.Pool, src: hv.Volume) -> float:
    stop = threading.Event()
    watcher = threading.Thread(target=_poll, args=(pool, "a.qcow2", stop), daemon=True)
    spec = hv.VolumeSpec(name="a.qcow2", capacity=2 * G, format="qcow2")
    os.sync()
    start = time.perf_counter()
    watcher.start()
    new = pool.clone_volume(src, spec)
    os.sync()
    elapsed = time.perf_counter() - start
    stop.set()
    watcher.join()
    new.delete()
    return elapsed


def qemu_img_convert(pool: hv.Pool, src: hv.Volume) -> float:
    dst = os.path.join(os.path.dirname(src.path), "b.qcow2")
    os.sync()
    start = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", src.path, dst], check=True)
    os.sync()
    elapsed = time.perf_counter() - start
    os.unlink(dst)
    return elapsed


def linked(pool: hv.Pool, src: hv.Volume) -> float:
    start = time.perf_counter()
    new = pool.create_overlay(src, "overlay.qcow2")
    elapsed = time.perf_counter() - start
    new.delete()
    return elapsed


def interleave(rounds: int, runs: dict[str, Callable[[], float]], *, warmup: int = 1) -> dict[str, list[float]]:
    """A B A B...: ``warmup`` uncounted rounds first (first touch of the files is slow here), then ``rounds``."""
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for key, fn in runs.items():
            times[key].append(fn())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--uri", default="qemu:///system")
    args = parser.parse_args()

    conn = hv.registry.connection(args.uri)
    folder = tempfile.mkdtemp(prefix="kvmwebbench-clone-")
    os.chmod(folder, 0o755)
    name = f"kvmwebbench-clone-{os.getpid()}"
    pool = hv.pool_define(conn, hv.PoolSpec(name=name, target_path=os.path.join(folder, "pool")))
    try:
        print(f"writing a 2 GiB qcow2 with {DATA / G:.1f} GiB of random data...", file=sys.stderr)
        src = _write_source(pool, pool.spec().target_path)
        allocated = src.info(pool=name).allocation
        print(f"full clone: {args.rounds} interleaved rounds...", file=sys.stderr)
        full = interleave(args.rounds, {
            "portal": lambda: portal_full_clone(pool, src),
            "qemu-img": lambda: qemu_img_convert(pool, src),
        })
        small = pool.create_volume(hv.VolumeSpec(name="src-1g.qcow2", capacity=G))
        big = pool.create_volume(hv.VolumeSpec(name="src-20g.qcow2", capacity=20 * G))
        links = interleave(args.rounds * 4, {"1 GiB": lambda: linked(pool, small),
                                             "20 GiB": lambda: linked(pool, big)})

        med = {k: statistics.median(v) for k, v in full.items()}
        mbps = {k: allocated / M / t for k, t in med.items()}
        lmed = {k: statistics.median(v) for k, v in links.items()}
        print()
        print(f"Clone benchmark ({args.uri}, {os.cpu_count()} CPUs; medians of interleaved runs)")
        print()
        print("| what | portal | baseline | ratio | target |")
        print("|---|---|---|---|---|")
        print(f"| full clone, 2 GiB qcow2 with {allocated / G:.2f} GiB random data ({args.rounds} rounds A B A B, "
              "incl. sync) "
              f"| {med['portal']:.2f} s = {mbps['portal']:.0f} MiB/s "
              f"| qemu-img convert -O qcow2: {med['qemu-img']:.2f} s = {mbps['qemu-img']:.0f} MiB/s "
              f"| {mbps['portal'] / mbps['qemu-img']:.2f}× throughput | ≥ 0.8× |")
        print(f"| linked clone (qcow2 overlay) of a 1 GiB vs a 20 GiB source ({args.rounds * 4} rounds each) "
              f"| 20 GiB: {lmed['20 GiB'] * 1000:.1f} ms | 1 GiB: {lmed['1 GiB'] * 1000:.1f} ms "
              f"| {lmed['20 GiB'] / lmed['1 GiB']:.2f} | ≤ 1.2 |")
        print()
        print("raw times (s): " + "; ".join(f"{k}: {', '.join(f'{t:.2f}' for t in v)}" for k, v in full.items()))
    finally:
        try:
            if pool.is_active():
                for vol in pool.volumes():
                    pool.volume(vol.name).delete()
                pool.stop()
        finally:
            pool.undefine()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
