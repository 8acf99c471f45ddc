from django.apps import AppConfig


class FleetConfig(AppConfig):
    name = "kvmweb.fleet"
    label = "fleet"
    verbose_name = "Many hosts: placement, migration, maintenance"
