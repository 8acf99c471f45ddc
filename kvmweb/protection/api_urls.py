"""API of snapshots and backups (under /api/v1/)."""
from django.urls import path  # noqa: F401

urlpatterns: list = []  # type: ignore[type-arg]
