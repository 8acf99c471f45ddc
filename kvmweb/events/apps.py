from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "kvmweb.events"
    label = "events"
