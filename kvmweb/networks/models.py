from django.conf import settings
from django.db import models

from kvmweb.hosts.models import Host


class AllowedNetwork(models.Model):
    """Staff's decision that users may attach their VMs to the libvirt network ``name`` on ``host``.

    Everything else about a network (mode, subnet, state) lives in libvirt and is read from it. A row whose
    network was deleted outside the portal is harmless: only networks libvirt lists are offered.
    """

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="allowed_networks")
    name = models.CharField(max_length=64, help_text="the libvirt network's name")
    allowed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["host", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="networks_allowed_unique")]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"
