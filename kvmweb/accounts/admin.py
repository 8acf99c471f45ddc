"""Staff edit quotas on the user's page (an inline) or in the Quota list, which shows what each user uses; see and
revoke anyone's API tokens (the digest only), see and delete SSH keys, and reset a person's two-factor login (an
action on the users' list). Tokens and keys change only through the services (audited)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from kvmweb.core.errors import ServiceError

from .models import ApiToken, Quota, SshKey
from .selectors import quota_summary
from .sshkeys import ssh_key_delete
from .tokens import token_revoke
from .twofactor import totp_reset


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


# ------------------------------------------------------------------------------------------------ tokens, keys, 2FA
def _run_each(modeladmin: admin.ModelAdmin, request: HttpRequest, call: Callable[[Any], object],  # type: ignore[type-arg]
              items: Iterable[Any]) -> None:
    """An admin action as one service call per selected item: each says how it went."""
    for item in items:
        try:
            message = str(getattr(call(item), "message", ""))
        except ServiceError as exc:
            modeladmin.message_user(request, f"{item}: {exc.detail}", level=messages.ERROR)
        else:
            modeladmin.message_user(request, message, level=messages.SUCCESS)


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    """Seen by staff; changed only through the actions (the services, audited)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(_ReadOnly):
    list_display = ("name", "user", "prefix", "created", "expires", "last_used", "revoked")
    list_filter = (("revoked", admin.EmptyFieldListFilter), "created")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "digest", "created", "expires", "last_used", "revoked")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        _run_each(self, request, lambda t: token_revoke(actor=request.user, token_id=t.pk, any_user=True),
                  queryset.filter(revoked__isnull=True))


@admin.register(SshKey)
class SshKeyAdmin(_ReadOnly):
    list_display = ("name", "user", "key_type", "bits", "fingerprint", "created")
    search_fields = ("name", "fingerprint", "user__username")
    readonly_fields = ("user", "name", "key_type", "bits", "fingerprint", "public_key", "created")
    actions = ["delete_keys"]

    @admin.action(description="Delete the selected SSH keys")
    def delete_keys(self, request: HttpRequest, queryset: Any) -> None:
        _run_each(self, request, lambda k: ssh_key_delete(actor=request.user, key_id=k.pk, any_user=True), queryset)


@admin.action(description="Reset two-factor login (a lost phone)")
def reset_two_factor(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: Any) -> None:  # type: ignore[type-arg]
    _run_each(modeladmin, request, lambda user: totp_reset(actor=request.user, user=user), queryset)


UserWithQuotaAdmin.actions = [*(UserWithQuotaAdmin.actions or []), reset_two_factor]
