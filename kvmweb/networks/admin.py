from django.contrib import admin

from .models import AllowedNetwork


@admin.register(AllowedNetwork)
class AllowedNetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "host", "allowed_by", "created")
    list_filter = ("host",)
    search_fields = ("name",)
    list_select_related = ("host", "allowed_by")
    readonly_fields = ("allowed_by", "created")
