"""``manage.py event_listener``: one thread per enabled host listening to libvirt domain events, publishing VM
state changes to browsers (/ws/events/). Picks up hosts added later; reconnects to hosts that go away."""
from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand

from kvmweb.machines.events import listen_host
from kvmweb.hosts.selectors import host_queryset


class Command(BaseCommand):
    help = "Publish libvirt domain events (VM state changes) of every host to the portal's browsers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rescan", type=float, default=30.0, help="seconds between looks for new hosts")

    def handle(self, *args: Any, rescan: float, **options: Any) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_a: stop.set())
        listening: dict[str, threading.Event] = {}
        while not stop.is_set():
            hosts = {h.uri: h for h in host_queryset()}
            for uri, host in hosts.items():
                if uri not in listening:
                    listening[uri] = threading.Event()
                    listen_host(host, listening[uri])
                    self.stdout.write(f"listening to {host.name} ({uri})")
            for uri in [u for u in listening if u not in hosts]:
                listening.pop(uri).set()
            stop.wait(rescan)
        for host_stop in listening.values():
            host_stop.set()
