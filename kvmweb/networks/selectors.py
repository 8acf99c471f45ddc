"""Every read about networks: libvirt's networks joined with staff's access decisions and the VMs using them."""
from __future__ import annotations

from dataclasses import dataclass, field

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, is_authenticated, is_staff, require_vm, vm_uuids_visible
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_get, host_queryset
from kvmweb.hosts.services import host_connection
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.handles import vm_handle

from .models import AllowedNetwork


@dataclass(frozen=True)
class AttachedVm:
    """A VM with a NIC on a network (only VMs the asker may see are listed)."""

    uuid: str
    name: str
    active: bool
    macs: tuple[str, ...]


@dataclass
class NetworkRow:
    host: Host
    summary: hv.NetworkSummary
    allowed: bool
    vms: list[AttachedVm] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def spec(self) -> hv.NetworkSpec:
        return self.summary.spec

    @property
    def running_vms(self) -> list[AttachedVm]:
        return [v for v in self.vms if v.active]


@dataclass
class NetworkList:
    rows: list[NetworkRow] = field(default_factory=list)
    unavailable: list[tuple[Host, str]] = field(default_factory=list)


def _allowed_names(host: Host) -> set[str]:
    return set(AllowedNetwork.objects.filter(host=host).values_list("name", flat=True))


def _attachments(actor: Actor, host: Host, conn: hv.Connection) -> dict[str, list[AttachedVm]]:
    """network name → the VMs ``actor`` may see with a NIC on it (one query for which, whatever their number)."""
    visible = vm_uuids_visible(actor, host_id=host.pk)
    result: dict[str, list[AttachedVm]] = {}
    for dom in hv.domain_nics_all(conn):
        if visible is not None and dom.uuid not in visible:
            continue
        by_net: dict[str, list[str]] = {}
        for nic in dom.nics:
            if nic.type == "network":
                by_net.setdefault(nic.source, []).append(nic.mac)
        for net, macs in by_net.items():
            result.setdefault(net, []).append(AttachedVm(dom.uuid, dom.name, dom.active, tuple(macs)))
    return result


def network_list(*, actor: Actor, host_id: int | None = None) -> NetworkList:
    """``virsh net-list --all`` over every host: staff see every network, users the ones they may attach to."""
    result = NetworkList()
    if not is_authenticated(actor):
        return result
    hosts = host_queryset()
    if host_id is not None:
        hosts = hosts.filter(pk=host_id)
    for host in hosts:
        conn = host_connection(host)
        try:
            summaries = hv.network_list(conn)
            attachments = _attachments(actor, host, conn)
        except hv.HypervisorError as exc:
            result.unavailable.append((host, exc.detail))
            continue
        allowed = _allowed_names(host)
        for summary in summaries:
            if not is_staff(actor) and summary.name not in allowed:
                continue
            result.rows.append(NetworkRow(host, summary, summary.name in allowed, attachments.get(summary.name, [])))
    result.rows.sort(key=lambda r: (r.name.lower(), r.host.name))
    return result


def network_row(*, actor: Actor, host_id: int, name: str) -> NetworkRow:
    """One network ``actor`` may see; NotFoundError for missing and for not-allowed alike."""
    if not is_authenticated(actor):
        raise NotFoundError("No such network.")
    host = host_get(host_id)
    allowed = name in _allowed_names(host)
    if not (is_staff(actor) or allowed):
        raise NotFoundError("No such network.")
    conn = host_connection(host)
    summary = next((s for s in hv.network_list(conn) if s.name == name), None)
    if summary is None:
        raise NotFoundError(f"No network named {name} on {host}.")
    return NetworkRow(host, summary, allowed, _attachments(actor, host, conn).get(name, []))


@dataclass(frozen=True)
class NetworkDetail:
    row: NetworkRow
    info: hv.NetworkInfo
    leases: list[hv.DhcpLease]
    xml: str | None  # staff only


def network_detail(*, actor: Actor, host_id: int, name: str) -> NetworkDetail:
    """A network's page: ``virsh net-info``, ``net-dhcp-leases`` (users see the leases of their own VMs only)
    and ``net-dumpxml`` (staff)."""
    row = network_row(actor=actor, host_id=host_id, name=name)
    net = hv.network_lookup(host_connection(row.host), name)
    leases = net.dhcp_leases() if row.summary.active else []
    staff = is_staff(actor)
    if not staff:
        mine = {mac for vm in row.vms for mac in vm.macs}
        leases = [lease for lease in leases if lease.mac.lower() in mine]
    return NetworkDetail(row=row, info=net.info(), leases=leases, xml=net.xml() if staff else None)


def attachable_networks(*, actor: Actor, host: Host) -> list[hv.NetworkSummary]:
    """Networks of ``host`` that ``actor`` may attach a VM to: all for staff, the allowed ones for users."""
    summaries = hv.network_list(host_connection(host))
    if is_staff(actor):
        return summaries
    allowed = _allowed_names(host)
    return [s for s in summaries if s.name in allowed]


@dataclass(frozen=True)
class VmNics:
    nics: list[hv.NicInfo]
    networks: list[hv.NetworkSummary]  # where a new NIC may go
    active: bool


def vm_nics(*, actor: Actor, vm: VirtualMachine) -> VmNics:
    """The NICs of a VM (``virsh domiflist`` + link state + addresses from leases or the guest agent)."""
    require_vm(actor, vm, VmAction.VIEW)
    dom = vm_handle(vm)
    doc = dom.document()
    active = dom.state().is_active
    addresses: dict[str, tuple[str, ...]] = {}
    if active and doc.interfaces:
        agent = any(c.target_name == hv.GUEST_AGENT_CHANNEL for c in doc.channels)
        addresses = dom.interface_addresses(agent=agent)
    nics = [n.info(addresses.get((n.mac or "").lower(), ())) for n in doc.interfaces]
    return VmNics(nics=nics, networks=attachable_networks(actor=actor, host=vm.host), active=active)
