from django.apps import AppConfig


class HostsConfig(AppConfig):
    name = "kvmweb.hosts"
    label = "hosts"
