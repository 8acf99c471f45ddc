from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEntry


class AppendOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only in the admin: no add, no change, no delete (and so no "Delete selected" action)."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(AuditEntry)
class AuditEntryAdmin(AppendOnlyAdmin):
    list_display = ("created", "who", "action", "target", "host", "ok")
    list_filter = ("action", "ok", "target_type")
    search_fields = ("target", "target_id", "detail", "actor_name", "actor__username")
    list_select_related = ("actor",)
