"""What protecting a VM's work leaves in the database: its backups and the retention rules. Snapshots need no row:
libvirt keeps their metadata with the domain (``virsh snapshot-list``) and is their source of truth."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Backup(models.Model):
    """A full backup of a VM's disks, one volume per disk in a host's backup pool, with the VM's definition as it
    was (to restore it as a new VM, or over the VM). Backups outlive the VM they were made of."""

    class State(models.TextChoices):
        RUNNING = "running", "being made"
        COMPLETE = "complete", "complete"
        FAILED = "failed", "failed"

    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="backups")
    vm_uuid = models.UUIDField(db_index=True)
    vm_name = models.CharField(max_length=64)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="vm_backups", help_text="the VM's owner when it was made")
    made_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    pool = models.CharField(max_length=64, help_text="the backup pool holding its volumes")
    state = models.CharField(max_length=8, choices=State.choices, default=State.RUNNING)
    live = models.BooleanField(default=False, help_text="made while the VM ran (libvirt's backup API, push mode)")
    disks = models.JSONField(default=list, help_text="[{target, volume, path, format, capacity, size}] per disk")
    definition = models.TextField(help_text="the VM's inactive domain XML when the backup began")
    size = models.BigIntegerField(default=0, help_text="bytes the backup's volumes take in the pool")
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"backup #{self.pk} of {self.vm_name}"


class Retention(models.Model):
    """Keep the last ``keep`` complete backups of each VM: for the VMs of one user, or for backups in one pool (a
    user's rule wins over a pool's; neither: ``KVMWEB_BACKUP_KEEP``)."""

    host = models.ForeignKey("hosts.Host", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    pool = models.CharField(max_length=64, blank=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="backup_retention")
    keep = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(user__isnull=False) | (models.Q(host__isnull=False) & ~models.Q(pool="")),
                                   name="retention_user_or_pool"),
            models.UniqueConstraint(fields=["host", "pool"], condition=models.Q(user__isnull=True),
                                    name="retention_one_per_pool"),
        ]

    def __str__(self) -> str:
        return f"keep {self.keep} ({self.user or self.pool})"
