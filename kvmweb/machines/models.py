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


class VmShare(models.Model):
    """A VM shared with one user or one Django group, with a role (``access.permissions.SHARE_ROLES``).

    Exactly one of ``user`` and ``group`` is set; a VM has at most one share per user and one per group. A user's
    role is the highest of their direct share and their groups' shares (owner and staff are above every share).
    """

    ROLE_CHOICES = [("viewer", "viewer"), ("operator", "operator"), ("manager", "manager")]

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="vm_shares")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="vm_shares")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False, group__isnull=True)
                       | models.Q(user__isnull=True, group__isnull=False)),
                name="vmshare_user_xor_group"),
            models.UniqueConstraint(fields=["vm", "user"], name="vmshare_one_per_user"),
            models.UniqueConstraint(fields=["vm", "group"], name="vmshare_one_per_group"),
        ]

    def __str__(self) -> str:
        who = f"group {self.group}" if self.group_id else str(self.user)
        return f"{self.vm.name} shared with {who} as {self.role}"
