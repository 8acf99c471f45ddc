"""``manage.py workers``: the Celery workers of this machine, one for the default queue and one per host queue,
following the hosts as they are added and removed (``kvmweb.jobs.workers``). Stopping it (SIGTERM, Ctrl-C) stops
them all, each after its running jobs."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from kvmweb.hosts.follow import run_until_signalled
from kvmweb.jobs.workers import WorkerOptions, workers_run


class Command(BaseCommand):
    help = "Run a Celery worker for the default job queue and one per host queue, following the hosts."

    def add_arguments(self, parser: Any) -> None:
        defaults = WorkerOptions()
        parser.add_argument("--name", default=defaults.name, help="node name prefix (unique per machine)")
        parser.add_argument("--pool", default=defaults.pool, choices=["prefork", "threads", "solo"])
        parser.add_argument("--concurrency", type=int, default=int(settings.KVMWEB_WORKER_CONCURRENCY),
                            help="jobs at a time of the default queue's worker")
        parser.add_argument("--host-concurrency", type=int, default=int(settings.KVMWEB_HOST_WORKER_CONCURRENCY),
                            help="jobs at a time of each host's worker")
        parser.add_argument("--beat", default="", metavar="SCHEDULE_FILE",
                            help="also run Celery beat (periodic work) in the default queue's worker; one machine only")
        parser.add_argument("--loglevel", default=defaults.loglevel)
        parser.add_argument("--rescan", type=float, default=5.0, help="seconds between looks at the hosts")

    def handle(self, *args: Any, **options: Any) -> None:
        run_until_signalled(self.stdout, lambda stop, said: workers_run(stop, WorkerOptions(
            name=options["name"], pool=options["pool"], concurrency=options["concurrency"],
            host_concurrency=options["host_concurrency"], loglevel=options["loglevel"], beat=options["beat"],
        ), rescan=options["rescan"], said=said))
