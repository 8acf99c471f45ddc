"""What the portal must remember about storage that libvirt cannot: which pools staff opened to which users, and
who owns a volume that no VM uses yet. Sizes, formats, files and pool states live in libvirt and are read from it."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from kvmweb.hosts.models import Host


class PoolAccess(models.Model):
    """Staff open a pool of a host to everyone or to chosen users; users may then make and use volumes in it."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pool_access")
    pool = models.CharField("pool name", max_length=64)
    everyone = models.BooleanField(default=False, help_text="open to every user")
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="pool_access")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "pool"]
        constraints = [models.UniqueConstraint(fields=["host", "pool"], name="storage_pool_access_unique")]
        verbose_name_plural = "pool access"

    def __str__(self) -> str:
        return f"{self.pool} on {self.host}"


class VolumeOwner(models.Model):
    """The user a volume belongs to (set when a user creates, uploads or clones it). A volume a VM uses is also
    reachable by that VM's owner. Rows of volumes deleted outside the portal are ignored and pruned."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="volume_owners")
    pool = models.CharField("pool name", max_length=64)
    name = models.CharField("volume name", max_length=64)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="volumes")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "pool", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "pool", "name"], name="storage_volume_owner_unique")]

    def __str__(self) -> str:
        return f"{self.pool}/{self.name} on {self.host} ({self.owner})"
