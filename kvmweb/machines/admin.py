from django.contrib import admin

from .models import VirtualMachine


@admin.register(VirtualMachine)
class VirtualMachineAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "owner", "uuid", "created")
    list_filter = ("host", "owner")
    search_fields = ("name", "uuid", "owner__username")
    readonly_fields = ("uuid", "host", "name", "created")
    list_select_related = ("host", "owner")
    autocomplete_fields = ("owner",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # VMs are created in libvirt; rows appear when the portal sees them
