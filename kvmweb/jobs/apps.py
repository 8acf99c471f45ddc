from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "kvmweb.jobs"
    label = "jobs"

    def ready(self) -> None:
        from . import recovery  # noqa: F401  (connects the Celery worker signals)
        from . import selectors  # noqa: F401  (registers the check that keeps a busy host from being removed)
