"""Per-host work that follows the Host table: the event listener, the usage collector and the Celery workers of
the host queues each run one thread per host, started and stopped as hosts are added, removed, enabled or disabled.

    hosts_follow(stop, start=collect_host, rescan=5)   # blocks until ``stop`` is set

``start(host, host_stop)`` starts the host's thread and returns it; it must end soon after ``host_stop`` is set.
Every ``rescan`` seconds the table is read again: a new host gets a thread, a host removed, disabled (unless
``every``) or moved to another URI has its thread stopped, and a thread that ended by itself is started again. A
host that does not answer is its own thread's business (each retries with a capped back-off): it never holds up
the others, nor this loop, which touches only the database.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from io import TextIOBase

from django.db import close_old_connections

from .models import Host

log = logging.getLogger(__name__)

Start = Callable[[Host, threading.Event], threading.Thread]


def run_until_signalled(out: TextIOBase, run: Callable[[threading.Event, Callable[[str], None]], None]) -> None:
    """What a daemon command does: ``run(stop, said)`` with ``stop`` set by SIGTERM or SIGINT and ``said`` writing
    a line to ``out`` (a command's ``self.stdout``), flushed at once."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())

    def said(line: str) -> None:
        out.write(line)
        out.flush()

    run(stop, said)


def hosts_follow(stop: threading.Event, *, start: Start, rescan: float = 5.0, every: bool = False,
                 said: Callable[[str], None] = log.info) -> None:
    """One thread per host (enabled hosts only, unless ``every``) until ``stop`` is set; then every thread is
    stopped and joined (5 s each at most)."""
    running: dict[int, tuple[str, threading.Event, threading.Thread]] = {}
    try:
        while not stop.is_set():
            close_old_connections()  # a long-lived loop: drop a database connection that broke or aged
            try:
                rows = Host.objects.all() if every else Host.objects.filter(enabled=True)
                hosts = {h.pk: h for h in rows}
            except Exception:  # noqa: BLE001 - the database is away: keep what runs, look again later
                log.exception("could not read the hosts")
                stop.wait(rescan)
                continue
            for pk in [p for p, (uri, _s, thread) in running.items()
                       if p not in hosts or hosts[p].uri != uri or not thread.is_alive()]:
                uri, host_stop, _thread = running.pop(pk)
                host_stop.set()
                said(f"stopped following host #{pk} ({uri})")
            for pk, host in hosts.items():
                if pk not in running:
                    host_stop = threading.Event()
                    running[pk] = (host.uri, host_stop, start(host, host_stop))
                    said(f"following {host.name} ({host.uri})")
            stop.wait(rescan)
    finally:
        for _uri, host_stop, _thread in running.values():
            host_stop.set()
        for _uri, _stop, thread in running.values():
            thread.join(5)
