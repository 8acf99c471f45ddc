from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "kvmweb.access"
    label = "access"
    verbose_name = "Access rules"
