from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from kvmweb.hosts.models import Host
from kvmweb.jobs.services import job_create


class Command(BaseCommand):
    help = ("Queue a self-test job (progress over a few steps) to check that a Celery worker runs jobs: the default "
            "queue's, or with --host the worker of that host's queue.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--steps", type=int, default=5)
        parser.add_argument("--pause", type=float, default=0.5)
        parser.add_argument("--host", default="", help="a host's name: the job goes to that host's queue")

    def handle(self, *args: Any, steps: int, pause: float, host: str, **options: Any) -> None:
        target = Host.objects.filter(name=host).first() if host else None
        if host and target is None:
            raise CommandError(f"No host is named {host!r}.")
        with transaction.atomic():
            job = job_create(actor=None, kind="jobs.selftest", host=target,
                             title=f"Worker self-test{f' on {target.name}' if target else ''}",
                             params={"steps": steps, "pause": pause})
        self.stdout.write(f"queued job #{job.pk}: see /jobs/{job.pk}/")
