"""What the console must remember: one-time tokens (as hashes only) and who watched which VM when."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from kvmweb.audit.models import AppendOnlyModel
from kvmweb.hosts.models import Host
from kvmweb.machines.models import VirtualMachine


class ConsoleToken(models.Model):
    """A one-time ticket to open one VM's console, bound to one user, one VM and its host.

    Only the SHA-256 of the random token is stored; the token itself exists only in the page that asked for it.
    """

    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_tokens")
    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="console_tokens")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="console_tokens")
    created = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    view_only = models.BooleanField(default=False, help_text="the proxy passes no keyboard or mouse input")
    api = models.BooleanField(default=False, help_text="issued to an API client: no session cookie needed to connect")

    def __str__(self) -> str:
        return f"console token for {self.vm_id} by {self.user_id} ({'used' if self.used_at else 'unused'})"


class ConsoleSession(AppendOnlyModel):
    """One console connection: who, which VM, from where, when it started and ended, and why it ended.

    Part of the audit trail, so append-only (``audit.models.AppendOnlyModel``): written when the session starts,
    its end (``ended``, ``end_reason``) filled in once, never changed or deleted after."""

    CLOSING = ("ended", "end_reason")

    KIND_CHOICES = [("vnc", "graphical (VNC)"), ("serial", "text (serial)")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="console_sessions")
    vm = models.ForeignKey(VirtualMachine, null=True, on_delete=models.SET_NULL, related_name="console_sessions")
    vm_name = models.CharField(max_length=64)
    vm_uuid = models.UUIDField()
    host_name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=KIND_CHOICES, default="vnc")
    view_only = models.BooleanField(default=False, help_text="the user could watch but not type or click")
    client = models.CharField(max_length=200, help_text="remote address (as the proxy saw it, plus X-Forwarded-For)")
    started = models.DateTimeField(auto_now_add=True)
    ended = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started"]

    def __str__(self) -> str:
        return f"{self.kind} console of {self.vm_name} by {self.user_id} from {self.client}"
