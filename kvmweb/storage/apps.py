from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "kvmweb.storage"
    label = "storage"

    def ready(self) -> None:
        from . import selectors  # noqa: F401 - registers this app's quota usage provider
        from . import services  # noqa: F401 - registers the default pool as a step of a host's first-run setup
