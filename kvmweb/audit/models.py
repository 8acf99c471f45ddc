"""The audit log: who did what to which object, when, and how it ended — append-only.

An entry, once written, is never changed or deleted through the portal: not by the admin (read-only, no delete),
not by the API (read-only), not by the model (``save()`` of an existing row, ``delete()``) nor its QuerySets
(``update()``, ``delete()``, ``bulk_update()``), which raise :class:`AppendOnlyError`. Deleting a user or a VM still
works: the entry's ``actor`` becomes empty (``SET_NULL``, done by Django through the plain base manager) and the
entry keeps the name the actor had (``actor_name``) and the VM's name and UUID (``target``, ``target_id``).
"""
from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models

from kvmweb.core.errors import PermissionDeniedError


class AppendOnlyError(PermissionDeniedError):
    """Raised on any attempt to change or delete a record of the audit trail."""

    code = "append_only"


class AppendOnlyQuerySet(models.QuerySet):  # type: ignore[type-arg]
    """A QuerySet that reads and creates, never changes or deletes."""

    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model._meta.verbose_name_plural} are append-only: they cannot be changed.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError(f"{self.model._meta.verbose_name_plural} are append-only: they cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self.model._meta.verbose_name_plural} are append-only: they cannot be deleted.")

    delete.queryset_only = True  # type: ignore[attr-defined]


class AppendOnlyModel(models.Model):
    """A record written once. ``CLOSING`` names the fields one later ``save(update_fields=...)`` may fill while the
    first of them is still empty (a console session's end); nothing else is ever changed."""

    CLOSING: ClassVar[tuple[str, ...]] = ()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and not self._closing(kwargs.get("update_fields")):
            raise AppendOnlyError(f"{self._meta.verbose_name_plural} are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def _closing(self, fields: Any) -> bool:
        if not self.CLOSING or not fields or not set(fields) <= set(self.CLOSING):
            return False
        return type(self)._base_manager.filter(pk=self.pk, **{f"{self.CLOSING[0]}__isnull": True}).exists()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(f"{self._meta.verbose_name_plural} are append-only: they cannot be deleted.")


class AuditEntry(AppendOnlyModel):
    """Who did what to which object, when, and how it ended."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_name = models.CharField(max_length=150, blank=True, help_text="the actor's user name when it was written")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32)
    target = models.CharField(max_length=200, help_text="name and identifier of the object")
    target_id = models.CharField(max_length=64, blank=True,
                                 help_text="the object's identifier (a VM's UUID), for filtering")
    host = models.CharField(max_length=200, blank=True)
    ok = models.BooleanField(default=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        outcome = "ok" if self.ok else "failed"
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.who} {self.action} {self.target} ({outcome})"

    @property
    def who(self) -> str:
        """The actor's name (also after the account was deleted); "system" for entries without one."""
        if self.actor is not None:
            return str(self.actor.get_username())
        return self.actor_name or "system"
