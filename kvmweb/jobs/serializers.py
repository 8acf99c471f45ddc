from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Job, JobLogLine


class JobLogLineSerializer(serializers.ModelSerializer[JobLogLine]):
    class Meta:
        model = JobLogLine
        fields = ["id", "at", "level", "message"]


class JobSerializer(serializers.ModelSerializer[Job]):
    type = serializers.CharField(source="kind")
    actor = serializers.SerializerMethodField()
    host = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "type", "title", "target_type", "target", "host", "actor", "state", "progress", "error",
                  "result", "cancellable", "cancel_requested", "created", "started", "finished", "task_id", "url"]

    def get_actor(self, job: Job) -> str | None:
        return job.actor.get_username() if job.actor else None

    def get_host(self, job: Job) -> str | None:
        return job.host.name if job.host else None

    def get_url(self, job: Job) -> str:
        return f"/jobs/{job.pk}/"


class JobDetailSerializer(JobSerializer):
    log = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "log"]

    def get_log(self, job: Job) -> list[dict[str, Any]]:
        return JobLogLineSerializer(job.lines.all(), many=True).data  # type: ignore[return-value]
