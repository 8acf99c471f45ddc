"""A Job: one long piece of work (create a VM, upload an ISO, clone a disk) done by a Celery task.

The row is the truth about that work: its state, progress, log, the error a person can read, and the clean-up
steps to run if it does not finish (``cleanup``), so a job interrupted by a dying worker can still be undone.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Job(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    UNFINISHED = (State.QUEUED, State.RUNNING)

    kind = models.CharField("type", max_length=64, db_index=True, help_text="e.g. vm.create, iso.upload")
    title = models.CharField(max_length=200, help_text="what a person reads: 'Create VM web1'")
    target_type = models.CharField(max_length=32, blank=True, help_text="vm, volume, iso...")
    target = models.CharField(max_length=200, blank=True, help_text="the target's id (a VM's UUID, a volume path)")
    host = models.ForeignKey("hosts.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="the task's input")
    result = models.JSONField(default=dict, blank=True, help_text="what the task produced")
    cleanup = models.JSONField(default=list, blank=True, help_text="undo steps, run in reverse if the job fails")
    cancellable = models.BooleanField(default=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="the Celery worker running it")
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True, help_text="last sign of life from the task")

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["target_type", "target"]), models.Index(fields=["actor", "state"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.state})"

    @property
    def finished_state(self) -> bool:
        return self.state not in self.UNFINISHED

    @property
    def can_cancel(self) -> bool:
        return self.cancellable and self.state in self.UNFINISHED and not self.cancel_requested


class JobLogLine(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "info"
        WARNING = "warning", "warning"
        ERROR = "error", "error"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="lines")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.level}: {self.message}"
