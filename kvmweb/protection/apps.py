from django.apps import AppConfig


class ProtectionConfig(AppConfig):
    name = "kvmweb.protection"
    label = "protection"
    verbose_name = "Snapshots and backups"
