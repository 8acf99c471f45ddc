"""Pages of snapshots: the snapshots section of a VM's page (loaded by htmx) and its forms. Thin: selectors and services
do the work."""
from __future__ import annotations

from django.urls import URLPattern

urls: list[URLPattern] = []
