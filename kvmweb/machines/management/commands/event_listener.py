"""``manage.py event_listener``: one thread per enabled host listening to libvirt domain events, publishing VM
state changes to browsers (/ws/events/). Follows hosts added, removed, enabled and disabled (``hosts.follow``);
reconnects to hosts that go away, backing off."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from kvmweb.hosts.follow import hosts_follow, run_until_signalled
from kvmweb.machines.events import listen_host


class Command(BaseCommand):
    help = "Publish libvirt domain events (VM state changes) of every host to the portal's browsers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rescan", type=float, default=5.0, help="seconds between looks at the hosts")

    def handle(self, *args: Any, rescan: float, **options: Any) -> None:
        run_until_signalled(
            self.stdout, lambda stop, said: hosts_follow(stop, start=listen_host, rescan=rescan, said=said))
