"""What "New VM from a template" remembers: flavors (named sizes) and templates (an image, a flavor, defaults)."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class Flavor(models.Model):
    """A named size staff define (vCPUs, memory, disk) that the wizard and the API offer."""

    name = models.CharField(max_length=64, unique=True)
    vcpus = models.PositiveIntegerField()
    memory_mib = models.PositiveIntegerField()
    disk_bytes = models.BigIntegerField(help_text="the new VM's disk size; an image's disk grows to it")
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["vcpus", "memory_mib", "disk_bytes", "name"]

    def __str__(self) -> str:
        return self.name


class Template(models.Model):
    """An image + a flavor + defaults. Staff publish templates (``owner`` empty, ``public``); a user may turn their
    own shut-off VM into a private one (``owner`` set, not public)."""

    class CloneMode(models.TextChoices):
        LINKED = "linked", "linked clone (a qcow2 overlay on the image: instant)"
        COPY = "copy", "full copy (independent of the image)"

    name = models.CharField(max_length=64)
    description = models.CharField(max_length=500, blank=True)
    image = models.ForeignKey("media.IsoImage", on_delete=models.PROTECT, related_name="templates",
                              limit_choices_to={"kind": "image"})
    flavor = models.ForeignKey(Flavor, null=True, blank=True, on_delete=models.PROTECT, related_name="templates")
    os_variant = models.CharField(max_length=64, blank=True, help_text="empty: the image's")
    network = models.CharField(max_length=64, blank=True, help_text="the network a new VM joins by default")
    cloud_init = models.BooleanField(default=True, help_text="give new VMs a cloud-init (NoCloud) seed")
    clone_mode = models.CharField(max_length=8, choices=CloneMode.choices, default=CloneMode.LINKED)
    public = models.BooleanField(default=False, help_text="published: offered to every user")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="vm_templates", help_text="a user's private template; empty: staff's")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["image", "name"], name="template_unique_name_per_image")]

    def __str__(self) -> str:
        return self.name
