from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "kvmweb.networks"
    label = "networks"
