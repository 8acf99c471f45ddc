"""Reads about a user's quota: the limits (their ``Quota`` row, else the ``KVMWEB_QUOTA_*`` defaults) and the usage,
read from libvirt.

Usage is summed by providers that the apps owning the resources register with :func:`usage_provider` (this app
sits below them and imports none of them):
- VMs, vCPUs and memory (the machines app): the user's VM records, and per host with such VMs one bulk listing
  and one bulk size read — two libvirt calls per host, however many VMs. vCPUs are the ones libvirt reports, memory
  the maximum each VM may take. A host that does not answer still counts its VMs, with 0 vCPUs and memory, and is
  named in ``unavailable``.
- Disk (the storage app): the capacity (virtual size) of the volumes the user owns (their allocation where that
  is greater: a qcow2 holding internal snapshots) — volumes they created,
  uploaded or cloned, and the disks of VMs they created. Volumes deleted outside the portal count 0.
- Reserved (this app): what the user's unfinished jobs will make and nothing above counts yet — the ``quota`` entry
  of a job's params (a clone's VM, vCPUs, memory and disks; a new VM's disk). One query.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, actor_id, is_staff

from kvmweb.jobs.models import Job

from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import ApiToken, Quota, SshKey

GiB = hv.GiB

_DEFAULTS = {
    "max_vms": "KVMWEB_QUOTA_VMS", "max_vcpus": "KVMWEB_QUOTA_VCPUS",
    "max_memory_mib": "KVMWEB_QUOTA_MEMORY_MIB", "max_disk_gib": "KVMWEB_QUOTA_DISK_GIB",
}


@dataclass(frozen=True)
class Limits:
    """None = no limit."""

    vms: int | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    disk_gib: int | None = None

    @property
    def unlimited(self) -> bool:
        return all(v is None for v in (self.vms, self.vcpus, self.memory_mib, self.disk_gib))


@dataclass
class Usage:
    vms: int = 0
    vcpus: int = 0
    memory_mib: int = 0
    disk_bytes: int = 0
    unavailable: list[str] = field(default_factory=list)  # hosts that did not answer: their VMs count 0 vCPUs/memory

    @property
    def disk_gib_used(self) -> int:
        """Whole GiB, rounded up."""
        return -(-self.disk_bytes // GiB)


def _setting(name: str) -> int | None:
    value = getattr(settings, name, "")
    if value in (None, ""):
        return None
    number = int(str(value).strip())
    return number if number >= 0 else None


def quota_limits(user: Actor) -> Limits:
    """The limits of ``user``: nothing for staff (never limited); their Quota row; else the settings' defaults."""
    if is_staff(user):
        return Limits()
    row = Quota.objects.filter(user_id=getattr(user, "pk", None)).first()
    if row is not None:
        return Limits(vms=row.max_vms, vcpus=row.max_vcpus, memory_mib=row.max_memory_mib, disk_gib=row.max_disk_gib)
    values = {key: _setting(name) for key, name in _DEFAULTS.items()}
    return Limits(vms=values["max_vms"], vcpus=values["max_vcpus"], memory_mib=values["max_memory_mib"],
                  disk_gib=values["max_disk_gib"])


UsageProvider = Callable[[Actor, Usage], None]
_PROVIDERS: list[UsageProvider] = []


def usage_provider(fn: UsageProvider) -> UsageProvider:
    """Register ``fn(user, usage)``, which adds what ``user`` uses of one kind of resource to ``usage``."""
    _PROVIDERS.append(fn)
    return fn


RESERVED = ("vms", "vcpus", "memory_mib", "disk_bytes")


def quota_reservation(**needs: int) -> dict[str, int]:
    """The ``quota`` entry of a job's params: what the job will make that no provider counts until it exists."""
    return {key: int(needs[key]) for key in RESERVED if needs.get(key)}


@usage_provider
def reserved_usage(user: Actor, usage: Usage) -> None:
    """What ``user``'s unfinished jobs have reserved (see :func:`quota_reservation`): one query."""
    jobs = Job.objects.filter(actor_id=actor_id(user), state__in=Job.UNFINISHED, params__has_key="quota")
    for params in jobs.values_list("params", flat=True):
        for key, value in (params.get("quota") or {}).items():
            if key in RESERVED:
                setattr(usage, key, getattr(usage, key) + int(value))


def quota_usage(user: Actor) -> Usage:
    """What ``user`` uses now, summed by the registered providers (their costs: see the module's docstring)."""
    usage = Usage()
    for provider in _PROVIDERS:
        provider(user, usage)
    return usage


@dataclass(frozen=True)
class QuotaSummary:
    limits: Limits
    usage: Usage

    def resources(self) -> list[tuple[str, int | None, int]]:
        """(key, limit or None, used) for each resource; disk in whole GiB, rounded up."""
        u, lim = self.usage, self.limits
        return [("vms", lim.vms, u.vms), ("vcpus", lim.vcpus, u.vcpus), ("memory_mib", lim.memory_mib, u.memory_mib),
                ("disk_gib", lim.disk_gib, u.disk_gib_used)]

    @property
    def line(self) -> str:
        """"2 of 4 VMs · 3 of 8 vCPUs · 3.0 of 8 GiB memory · 25 of 100 GiB disk" — limited resources only."""
        u, lim = self.usage, self.limits
        parts = []
        if lim.vms is not None:
            parts.append(f"{u.vms} of {lim.vms} VMs")
        if lim.vcpus is not None:
            parts.append(f"{u.vcpus} of {lim.vcpus} vCPUs")
        if lim.memory_mib is not None:
            parts.append(f"{u.memory_mib / 1024:.1f} of {lim.memory_mib / 1024:g} GiB memory")
        if lim.disk_gib is not None:
            parts.append(f"{u.disk_gib_used} of {lim.disk_gib} GiB disk")
        return " · ".join(parts)


def quota_summary(user: Actor, *, always: bool = False) -> QuotaSummary:
    """Limits and usage; unless ``always``, usage is read from libvirt only when something is limited."""
    limits = quota_limits(user)
    return QuotaSummary(limits=limits, usage=quota_usage(user) if always or not limits.unlimited else Usage())


# ------------------------------------------------------------------------------------------------ the person's account
def ssh_keys_of(user: Actor) -> list[SshKey]:
    """``user``'s SSH public keys, by name (``key.public_key``: the ``type base64`` line; ``key.name``: what they
    called it), for the profile, the API and the guests they create (cloud-init's ``ssh_authorized_keys``)."""
    return list(SshKey.objects.filter(user_id=actor_id(user)))


def tokens_of(user: Actor) -> list[ApiToken]:
    """``user``'s API tokens that were not revoked (expired ones too: they are shown as expired), newest first."""
    return list(ApiToken.objects.filter(user_id=actor_id(user), revoked__isnull=True))


def totp_device_of(user: Actor, *, confirmed: bool = True) -> TOTPDevice | None:
    """``user``'s authenticator (TOTP device): the confirmed one (two-factor login is on), or with
    ``confirmed=False`` the one being set up."""
    return TOTPDevice.objects.filter(user_id=getattr(user, "pk", None), confirmed=confirmed).first()
