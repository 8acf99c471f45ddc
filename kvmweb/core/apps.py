from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "kvmweb.core"
    label = "core"
