from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "kvmweb.media"
    label = "media"
    verbose_name = "ISO library"
