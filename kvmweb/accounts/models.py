"""What the portal must remember of a person that libvirt cannot: their quota (usage is never stored; it is read
from libvirt, see ``selectors.quota_usage``), their API tokens (hashed) and their SSH public keys."""
from __future__ import annotations

from django.conf import settings
from django.db import models

LIMITS = ("max_vms", "max_vcpus", "max_memory_mib", "max_disk_gib")


class Quota(models.Model):
    """A user's limits. Empty = no limit. Users without a row get the defaults from the settings
    ``KVMWEB_QUOTA_*``; staff are never limited."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota")
    max_vms = models.PositiveIntegerField("VMs", null=True, blank=True, help_text="empty = no limit")
    max_vcpus = models.PositiveIntegerField("vCPUs", null=True, blank=True, help_text="empty = no limit")
    max_memory_mib = models.PositiveIntegerField("memory (MiB)", null=True, blank=True, help_text="empty = no limit")
    max_disk_gib = models.PositiveIntegerField("disk (GiB)", null=True, blank=True, help_text="empty = no limit")

    def __str__(self) -> str:
        return f"quota of {self.user}"


class ApiToken(models.Model):
    """A user's API token. The secret is shown once, when it is made; only its SHA-256 digest is kept (see
    ``tokens.py`` for why a fast hash is right here). A revoked token keeps its row, so a client that still sends
    it is told so; ``prefix`` (the secret's first characters) lets a person tell their tokens apart."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="the first characters of the secret, to recognise it")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret (hex)")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True, help_text="empty = never")
    last_used = models.DateTimeField(null=True, blank=True, help_text="updated at most once a minute")
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…) of {self.user}"


class SshKey(models.Model):
    """An SSH public key of a user (for the guests they create). ``public_key`` is the canonical one-line form
    without comment (``ssh-ed25519 AAAA…``), as re-encoded from the parsed key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssh_keys")
    name = models.CharField(max_length=100)
    key_type = models.CharField(max_length=40)
    bits = models.PositiveIntegerField()
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=60, help_text="SHA256:… as ssh-keygen -lf prints it")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "SSH key"
        constraints = [models.UniqueConstraint(fields=["user", "fingerprint"], name="sshkey_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.name} ({self.fingerprint}) of {self.user}"
