from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "kvmweb.monitoring"
    label = "monitoring"
