"""``manage.py collector``: one thread per enabled host sampling the usage of its VMs and of the host itself
(monitoring's Collector: the history in Redis, the latest values) and sending each sample, live, to the browsers
of the people who may see each VM (``kvmweb.machines.usage``). Follows hosts added and removed; a Redis lease per
host keeps one collector per host however many of these processes run."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from kvmweb.hosts.follow import hosts_follow, run_until_signalled
from kvmweb.machines.usage import collect_host


class Command(BaseCommand):
    help = "Sample the usage (CPU, memory, disk and network) of every VM and host, for the graphs and lists."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--rescan", type=float, default=5.0, help="seconds between looks at the hosts")

    def handle(self, *args: Any, rescan: float, **options: Any) -> None:
        run_until_signalled(
            self.stdout, lambda stop, said: hosts_follow(stop, start=collect_host, rescan=rescan, said=said))
