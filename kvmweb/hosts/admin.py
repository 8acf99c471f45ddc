from django.contrib import admin

from .models import Host


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "uri", "domain_type", "detected_domain_type", "enabled")
    readonly_fields = ("detected_domain_type", "created")
