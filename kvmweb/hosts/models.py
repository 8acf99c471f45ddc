from django.conf import settings
from django.db import models

from kvmweb import hypervisor as hv


class Host(models.Model):
    """A libvirt host the portal manages, reached by its URI (``qemu:///system``, ``qemu+ssh://...``)."""

    class DomainType(models.TextChoices):
        AUTO = "auto", "detect from the host's capabilities"
        KVM = "kvm", "kvm (hardware virtualization)"
        QEMU = "qemu", "qemu (pure emulation, TCG)"

    name = models.SlugField(max_length=64, unique=True)
    uri = models.CharField("libvirt URI", max_length=255, unique=True)
    domain_type = models.CharField(max_length=8, choices=DomainType.choices, default=DomainType.AUTO)
    detected_domain_type = models.CharField(max_length=8, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    maintenance = models.BooleanField(
        default=False, help_text="in maintenance: no new VMs are placed here; evacuate moves its running VMs away")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def shown_uri(self) -> str:
        """The URI as people read it: without the portal's key and known_hosts options."""
        return hv.shorten_uri(self.uri)

    @property
    def effective_domain_type(self) -> str:
        """The domain type new guests get: the host's override, the site's override, else what was detected."""
        if self.domain_type != self.DomainType.AUTO:
            return self.domain_type
        if settings.KVMWEB_DOMAIN_TYPE:
            return settings.KVMWEB_DOMAIN_TYPE
        return self.detected_domain_type or "qemu"
