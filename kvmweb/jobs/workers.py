"""The Celery workers of one machine: one for the default queue and one per host queue, following the Host table.

``manage.py workers`` runs :func:`workers_run`. A job that concerns a host goes to that host's queue
(``registry.queue_of_host``); each host queue has a worker process of its own, with its own pool, so jobs stuck on
a host that is slow or does not answer fill only that worker's slots and never those of another host or of the
default queue. Hosts added later get their worker within ``rescan`` seconds, without a restart (``hosts_follow``
over every host row, enabled or not: a disabled host or one in maintenance still finishes its jobs); the worker of
a host that was removed is stopped with a warm shutdown (its running jobs finish first). A worker that exits is
started again at the next look.

Several machines may each run ``manage.py workers`` against one broker: a queue then has several consumers, which
is safe (late acknowledgement, and a job starts once: ``job_start`` moves it from queued to running atomically).
"""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kvmweb.hosts.follow import hosts_follow
from kvmweb.hosts.models import Host

from .registry import queue_default, queue_of_host

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class WorkerOptions:
    """How the workers run: ``name`` prefixes their node names (``<name>@<machine>``, ``<name>-host<id>@...``)."""

    name: str = "kvmweb"
    pool: str = "prefork"
    concurrency: int = 2  # the default queue's worker
    host_concurrency: int = 2  # each host queue's worker: at most this many jobs of one host at a time
    loglevel: str = "INFO"
    beat: str = ""  # a schedule file: the default queue's worker also runs Celery beat (one machine only)


def worker_command(*, queue: str, node: str, concurrency: int, options: WorkerOptions,
                   beat: str = "") -> list[str]:
    """The command line of one Celery worker consuming ``queue``."""
    command = [sys.executable, "-m", "celery", "-A", "kvmweb", "worker", "-Q", queue, "-n", f"{node}@%h",
               f"--pool={options.pool}", f"--concurrency={concurrency}", f"--loglevel={options.loglevel}"]
    if beat:
        command += ["-B", "-s", beat]
    return command


class Workers:
    """The worker processes one ``workers_run`` started, so that all of them are stopped at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    def start(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self._lock:
            self.procs = [p for p in self.procs if p.poll() is None]
            proc = subprocess.Popen(command, cwd=ROOT)
            self.procs.append(proc)
            return proc

    def stop_all(self, timeout: float) -> None:
        """Warm shutdown of every worker still running; those still running after ``timeout`` s are killed."""
        with self._lock:
            procs = [p for p in self.procs if p.poll() is None]
        for proc in procs:
            proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in %.0f s: killed", proc.pid, timeout)
                proc.kill()
                proc.wait()


def worker_supervise(workers: Workers, command: list[str], stop: threading.Event, what: str) -> threading.Thread:
    """Start ``command`` and a thread that stops it (SIGTERM: Celery's warm shutdown) when ``stop`` is set; the
    thread ends when the process does, whichever way."""
    proc = workers.start(command)

    def watch() -> None:
        while proc.poll() is None:
            if stop.wait(0.5):
                proc.terminate()
                proc.wait()
        if not stop.is_set():
            log.warning("the worker of %s exited with %s", what, proc.returncode)

    thread = threading.Thread(target=watch, name=f"worker-{what}", daemon=True)
    thread.start()
    return thread


def host_worker_starter(workers: Workers, options: WorkerOptions) -> Callable[[Host, threading.Event], threading.Thread]:
    """``hosts_follow``'s ``start``: the worker of one host's queue."""
    def start(host: Host, stop: threading.Event) -> threading.Thread:
        command = worker_command(queue=queue_of_host(host.pk), node=f"{options.name}-host{host.pk}",
                                 concurrency=options.host_concurrency, options=options)
        return worker_supervise(workers, command, stop, f"host {host.name}")

    return start


def workers_run(stop: threading.Event, options: WorkerOptions, *, rescan: float = 5.0, stop_timeout: float = 120.0,
                said: Callable[[str], None] = log.info) -> None:
    """Run the default queue's worker and one worker per host until ``stop`` is set; then stop them all: each
    finishes its running jobs, for ``stop_timeout`` seconds at most."""
    workers = Workers()
    default = worker_command(queue=queue_default(), node=options.name, concurrency=options.concurrency,
                             options=options, beat=options.beat)

    def keep_default() -> None:  # started again if it exits, like the host workers
        while not stop.is_set():
            worker_supervise(workers, default, stop, "the default queue").join()
            stop.wait(rescan)

    keeper = threading.Thread(target=keep_default, name="worker-default", daemon=True)
    keeper.start()
    said(f"worker for {queue_default()}")
    try:
        hosts_follow(stop, start=host_worker_starter(workers, options), rescan=rescan, every=True, said=said)
    finally:
        stop.set()
        workers.stop_all(stop_timeout)
