from django.contrib import admin

from kvmweb.audit.admin import AppendOnlyAdmin

from .models import ConsoleSession


@admin.register(ConsoleSession)
class ConsoleSessionAdmin(AppendOnlyAdmin):
    """Who watched which VM's console, from where, when, and why it ended (read-only, never deleted)."""

    list_display = ("started", "ended", "user", "vm_name", "kind", "view_only", "client", "end_reason")
    list_filter = ("kind", "view_only", "host_name")
    search_fields = ("vm_name", "vm_uuid", "user__username", "client")
