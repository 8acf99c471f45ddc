from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from kvmweb.jobs.services import job_create


class Command(BaseCommand):
    help = "Queue a self-test job (progress over a few steps) to check that a Celery worker runs jobs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--steps", type=int, default=5)
        parser.add_argument("--pause", type=float, default=0.5)

    def handle(self, *args: Any, steps: int, pause: float, **options: Any) -> None:
        with transaction.atomic():
            job = job_create(actor=None, kind="jobs.selftest", title="Worker self-test",
                             params={"steps": steps, "pause": pause})
        self.stdout.write(f"queued job #{job.pk}: see /jobs/{job.pk}/")
