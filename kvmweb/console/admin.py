from django.contrib import admin

from .models import ConsoleSession


@admin.register(ConsoleSession)
class ConsoleSessionAdmin(admin.ModelAdmin):
    """Who watched which VM's console, from where, when, and why it ended (read-only)."""

    list_display = ("started", "ended", "user", "vm_name", "kind", "client", "end_reason")
    list_filter = ("kind", "host_name")
    search_fields = ("vm_name", "vm_uuid", "user__username", "client")
    readonly_fields = [f.name for f in ConsoleSession._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
