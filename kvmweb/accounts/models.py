"""Per-user quotas: what the portal must remember that libvirt cannot. Usage is never stored; it is read from
libvirt (see ``selectors.quota_usage``)."""
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
