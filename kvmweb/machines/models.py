from django.conf import settings
from django.db import models

from kvmweb.hosts.models import Host


class VirtualMachine(models.Model):
    """What the portal remembers about a domain that libvirt cannot: its owner and notes.

    State, CPUs, memory, disks all live in libvirt and are read from it. A row exists for every domain the portal
    has seen; rows of domains deleted outside the portal are dropped when the host's list is next read.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="machines")
    uuid = models.UUIDField(unique=True)
    name = models.CharField(max_length=64, help_text="last name seen in libvirt")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="machines",
    )
    notes = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["owner", "host"])]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"

    @property
    def uuid_str(self) -> str:
        return str(self.uuid)
