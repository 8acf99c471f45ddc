"""Staff edit quotas on the user's page (an inline) or in the Quota list, which shows what each user uses."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .models import Quota
from .selectors import quota_summary


class QuotaInline(admin.StackedInline):  # type: ignore[type-arg]
    model = Quota
    can_delete = True
    extra = 1  # an empty form (saved only when filled)
    max_num = 1
    verbose_name_plural = "quota (empty = the KVMWEB_QUOTA_* defaults; staff are never limited)"


User = get_user_model()
_base = type(admin.site._registry.get(User)) if User in admin.site._registry else UserAdmin
if User in admin.site._registry:
    admin.site.unregister(User)


@admin.register(User)
class UserWithQuotaAdmin(_base):  # type: ignore[valid-type,misc]
    inlines = [*getattr(_base, "inlines", []), QuotaInline]


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "max_vms", "max_vcpus", "max_memory_mib", "max_disk_gib", "usage")
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)

    @admin.display(description="uses now")
    def usage(self, obj: Quota) -> str:
        return quota_summary(obj.user, always=True).line or "no limits"
