from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "kvmweb.storage"
    label = "storage"
