from __future__ import annotations

from django.conf import settings
from django.db import models


class IsoImage(models.Model):
    """An install medium in a host's ISO library: uploaded into the portal's ISO pool, or a file already on the
    host registered by staff. libvirt holds the bytes; this row remembers who added it and when."""

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

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["host", "path"], name="iso_unique_path"),
            models.UniqueConstraint(fields=["host", "name"], name="iso_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"
