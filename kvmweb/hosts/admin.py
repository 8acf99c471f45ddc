from django.contrib import admin
from django.http import HttpRequest

from .models import Host


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    """Hosts are added and removed on the Hosts page (their URI checked, SSH host key pinned, connection tested,
    docs/hosts.md); the admin changes the rest (domain type, enabled, maintenance)."""

    list_display = ("name", "shown_uri", "domain_type", "detected_domain_type", "enabled", "maintenance")
    readonly_fields = ("uri", "detected_domain_type", "created")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Host | None = None) -> bool:
        return False
