from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "kvmweb.console"
    label = "console"
