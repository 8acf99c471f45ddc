from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, require_staff
from kvmweb.core.errors import NotFoundError

from . import identity
from .models import Host
from .services import host_connection


def host_queryset() -> QuerySet[Host]:
    return Host.objects.filter(enabled=True)


def host_get(host_id: int) -> Host:
    """An enabled host by id; NotFoundError otherwise."""
    host: Host | None = host_queryset().filter(pk=host_id).first()
    if host is None:
        raise NotFoundError("No such host.")
    return host


@dataclass(frozen=True)
class HostStatus:
    host: Host
    facts: hv.HostFacts | None
    error: str | None
    vms: int | None = None  # domains defined or running on it (None: not counted, or the host did not answer)
    running: int | None = None

    @property
    def available(self) -> bool:
        return self.error is None


def host_status(host: Host, *, count: bool = False) -> HostStatus:
    """Whether ``host`` answers, what it is (and with ``count``, how many domains it has, in one bulk call)."""
    try:
        conn = host_connection(host)
        facts = hv.host_facts(conn)
        if not count:
            return HostStatus(host, facts, None)
        domains = hv.domain_list(conn, sizes=False)
        return HostStatus(host, facts, None, vms=len(domains), running=sum(d.state.is_active for d in domains))
    except hv.HypervisorError as exc:
        return HostStatus(host, None, exc.detail)


def host_status_list(*, count: bool = False) -> list[HostStatus]:
    """Every host, by name; one that does not answer says why (its connection remembers the failure for a short
    while, so it does not slow every page down)."""
    return [host_status(h, count=count) for h in Host.objects.all()]


@dataclass(frozen=True)
class HostVm:
    uuid: str
    name: str
    state: hv.DomainState
    vcpus: int | None
    memory_kib: int | None


@dataclass
class HostPage:
    """The host page: what libvirt says about the host, its pools, networks and domains (staff)."""

    host: Host
    details: hv.HostDetails | None = None
    error: str | None = None
    vms: list[HostVm] = field(default_factory=list)
    pools: list[hv.PoolInfo] = field(default_factory=list)
    networks: list[hv.NetworkSummary] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return self.error is None

    @property
    def running(self) -> int:
        return sum(v.state.is_active for v in self.vms)


def host_any(host_id: int) -> Host:
    """A host by id, enabled or not; NotFoundError otherwise."""
    host: Host | None = Host.objects.filter(pk=host_id).first()
    if host is None:
        raise NotFoundError("No such host.")
    return host


def host_page(*, actor: Actor, host_id: int) -> HostPage:
    """Everything the host page shows, read in bulk (capabilities, one domain listing, the pools, the networks);
    a host that does not answer gives a page that says why."""
    require_staff(actor, "see hosts")
    page = HostPage(host=host_any(host_id))
    try:
        conn = host_connection(page.host)
        page.details = hv.host_details(conn)
        page.vms = [HostVm(uuid=d.uuid, name=d.name, state=d.state, vcpus=d.vcpus, memory_kib=d.max_memory_kib)
                    for d in hv.domain_list(conn)]
        page.pools = hv.pool_list(conn)
        page.networks = hv.network_list(conn)
    except hv.HypervisorError as exc:
        page.error = exc.detail
    return page


@dataclass(frozen=True)
class PortalKey:
    public_key: str
    fingerprint: str
    authorized_keys_line: str  # what to put into the host's ~USER/.ssh/authorized_keys


def portal_key(*, actor: Actor) -> PortalKey:
    """The portal's SSH public key (made on first need) and the line a host's authorized_keys takes."""
    require_staff(actor, "see the portal's SSH key")
    me = identity.ssh_identity()
    return PortalKey(public_key=me.public_key, fingerprint=me.fingerprint, authorized_keys_line=me.authorized_keys_line)
