from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "kvmweb.jobs"
    label = "jobs"

    def ready(self) -> None:
        from . import recovery  # noqa: F401  (connects the Celery worker signals)
