from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from kvmweb import hypervisor as hv
from kvmweb.core.errors import NotFoundError

from .models import Host
from .services import host_connection


def host_queryset() -> QuerySet[Host]:
    return Host.objects.filter(enabled=True)


def host_get(host_id: int) -> Host:
    """An enabled host by id; NotFoundError otherwise."""
    host = host_queryset().filter(pk=host_id).first()
    if host is None:
        raise NotFoundError("No such host.")
    return host


@dataclass(frozen=True)
class HostStatus:
    host: Host
    facts: hv.HostFacts | None
    error: str | None

    @property
    def available(self) -> bool:
        return self.error is None


def host_status(host: Host) -> HostStatus:
    try:
        return HostStatus(host, hv.host_facts(host_connection(host)), None)
    except hv.HypervisorError as exc:
        return HostStatus(host, None, exc.detail)


def host_status_list() -> list[HostStatus]:
    return [host_status(h) for h in Host.objects.all()]
