from django.contrib import admin

from .models import PoolAccess, VolumeOwner


@admin.register(PoolAccess)
class PoolAccessAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("pool", "host", "everyone", "created")
    list_filter = ("host", "everyone")
    filter_horizontal = ("users",)


@admin.register(VolumeOwner)
class VolumeOwnerAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "pool", "host", "owner", "created")
    list_filter = ("host", "pool")
    search_fields = ("name", "owner__username")
