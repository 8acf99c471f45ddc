"""Pages of snapshots and backups: the sections of a VM's page (loaded by htmx) and their forms."""
from django.urls import path  # noqa: F401

app_name = "protection"
urlpatterns: list = []  # type: ignore[type-arg]
