from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "kvmweb.dashboard"
    label = "dashboard"
