from django.contrib import admin

from .models import Backup, Retention


@admin.register(Retention)
class RetentionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Staff set how many backups per VM to keep: for one user's VMs, or for the backups in one pool."""

    list_display = ("keep", "user", "host", "pool")
    list_filter = ("host",)


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Backups are read here; they are made, restored and deleted through the VM page and the API (their volumes
    live in libvirt)."""

    list_display = ("vm_name", "host", "state", "live", "size", "made_by", "created")
    list_filter = ("host", "state", "live")
    search_fields = ("vm_name", "vm_uuid")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
