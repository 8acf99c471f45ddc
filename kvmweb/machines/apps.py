from django.apps import AppConfig


class MachinesConfig(AppConfig):
    name = "kvmweb.machines"
    label = "machines"
    verbose_name = "Virtual machines"
