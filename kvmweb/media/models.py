from __future__ import annotations

from django.conf import settings
from django.db import models


class IsoImage(models.Model):
    """A file in a host's media library: an install medium (``kind`` "iso", the ISO library) or a disk image
    (``kind`` "image", the image library: qcow2/raw cloud images that templates and "New VM from an image" start
    from). Uploaded into the portal's pool for its kind, or a file already on the host registered (or copied) by
    staff. libvirt holds the bytes; this row remembers who added it, when, and what the portal learnt of it."""

    class Kind(models.TextChoices):
        ISO = "iso", "install medium (ISO)"
        IMAGE = "image", "disk image"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ISO)
    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="isos")
    name = models.CharField(max_length=200)
    path = models.CharField(max_length=1024)
    pool = models.CharField(max_length=64, blank=True, help_text="the libvirt pool holding it, if any")
    size = models.BigIntegerField(default=0)
    uploaded = models.BigIntegerField(default=0, help_text="bytes received so far (uploads)")
    complete = models.BooleanField(default=False)
    registered = models.BooleanField(default=False, help_text="a file that was already on the host")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    added = models.DateTimeField(auto_now_add=True)
    # -- disk images only (kind "image") --------------------------------------------------------------------
    format = models.CharField(max_length=8, blank=True, help_text="qcow2 or raw, as qemu-img info reports it")
    virtual_size = models.BigIntegerField(default=0, help_text="the disk's size as the guest sees it, in bytes")
    public = models.BooleanField(default=True, help_text="offered to every user (else: its owner and staff)")
    os_variant = models.CharField(max_length=64, blank=True, help_text="osinfo short id, e.g. debian12")
    kernel = models.CharField(max_length=1024, blank=True, help_text="direct kernel boot: the kernel's path")
    initrd = models.CharField(max_length=1024, blank=True, help_text="direct kernel boot: the initrd's path")
    cmdline = models.CharField(max_length=1024, blank=True, help_text="direct kernel boot: the kernel's arguments")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["host", "path"], name="iso_unique_path"),
            models.UniqueConstraint(fields=["host", "name"], name="iso_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"
