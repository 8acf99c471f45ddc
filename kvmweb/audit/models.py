from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """Who did what to which object, when, and how it ended."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32)
    target = models.CharField(max_length=200, help_text="name and identifier of the object")
    host = models.CharField(max_length=200, blank=True)
    ok = models.BooleanField(default=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        outcome = "ok" if self.ok else "failed"
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target} ({outcome})"
