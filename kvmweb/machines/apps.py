from django.apps import AppConfig


class MachinesConfig(AppConfig):
    name = "kvmweb.machines"
    label = "machines"
    verbose_name = "Virtual machines"

    def ready(self) -> None:
        from . import selectors  # noqa: F401 - registers this app's quota usage provider
