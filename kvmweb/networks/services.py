"""Every change to networks and VM NICs: permission check → validation → libvirt call → audit row.

Staff define, start, stop, delete networks and decide which ones users may attach to; users add, remove and
link up/down the NICs of their own VMs, on allowed networks only.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, require_staff
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_audited, vm_checked

from .models import AllowedNetwork
from .selectors import AttachedVm, attachable_networks, network_row


def _staff_only(actor: Actor) -> None:
    require_staff(actor, "can manage networks")


@contextlib.contextmanager
def _net_audit(actor: Actor, action: str, host: Host, name: str) -> Iterator[list[str]]:
    with audited(actor=actor, action=action, target_type="network", target=name, host=host.uri) as notes:
        yield notes


def _invalid(exc: hv.InvalidRequest, field: str = "name") -> ValidationError:
    fields = getattr(exc, "fields", None) or {field: [exc.detail]}
    return ValidationError(exc.detail, fields=fields)


# ------------------------------------------------------------------------------------------------ networks
@dataclass(frozen=True)
class NetworkResult:
    name: str
    message: str
    disconnected: tuple[AttachedVm, ...] = ()  # stop: the running VMs that lost connectivity


def network_validate(*, host: Host, spec: hv.NetworkSpec) -> None:
    """Everything that can be checked before libvirt sees the spec: the spec itself, the name, the subnet
    against other networks and host interfaces, the bridge against other networks' bridges."""
    try:
        spec.validate()
    except hv.InvalidRequest as exc:
        raise _invalid(exc) from None
    conn = host_connection(host)
    existing = hv.network_list(conn)
    if any(n.name == spec.name for n in existing):
        detail = f"A network named {spec.name} already exists on {host}."
        raise ValidationError(detail, fields={"name": [detail]})
    if spec.bridge and spec.mode != "bridge":
        owner = next((n.name for n in existing if n.bridge == spec.bridge), None)
        if owner:
            detail = f"The bridge {spec.bridge} already belongs to the network {owner}."
            raise ValidationError(detail, fields={"bridge": [detail]})
    if spec.mode == "bridge" and spec.bridge:
        interfaces = hv.host_interface_names(conn)
        if interfaces is not None and spec.bridge not in interfaces:
            detail = f"{host} has no interface named {spec.bridge}: create the host bridge first."
            raise ValidationError(detail, fields={"bridge": [detail]})
    try:
        hv.check_overlaps(spec, hv.host_address_users(conn))
    except hv.InvalidRequest as exc:
        raise _invalid(exc, "subnet") from None


def network_define(*, actor: Actor, host: Host, spec: hv.NetworkSpec, allow_users: bool = False) -> NetworkResult:
    """``virsh net-define``: a persistent, inactive network (and optionally open it to users)."""
    _staff_only(actor)
    network_validate(host=host, spec=spec)
    with _net_audit(actor, "network.define", host, spec.name) as notes:
        net = hv.network_define(host_connection(host), spec)
        notes.append(f"{spec.mode} {spec.subnet or 'no subnet'}")
        if allow_users:
            AllowedNetwork.objects.get_or_create(host=host, name=spec.name, defaults={"allowed_by": actor})
            notes.append("users may attach")
    return NetworkResult(net.name, f"The network {net.name} is defined (inactive). Start it when ready.")


def _network(host: Host, name: str) -> hv.Network:
    try:
        return hv.network_lookup(host_connection(host), name)
    except hv.NetworkNotFound:
        raise NotFoundError(f"No network named {name} on {host}.") from None


def network_start(*, actor: Actor, host: Host, name: str) -> NetworkResult:
    """``virsh net-start``. A failure (bridge name taken, address in use) leaves the network defined, inactive."""
    _staff_only(actor)
    with _net_audit(actor, "network.start", host, name):
        net = _network(host, name)
        if net.is_active():
            raise ConflictError(f"The network {name} is already active.", code="already_active")
        try:
            net.start()
        except hv.HypervisorError as exc:
            raise ConflictError(f"libvirt could not start the network {name}: {exc.detail}",
                                code="start_failed") from None
    return NetworkResult(name, f"{name} is active.")


def network_stop(*, actor: Actor, host: Host, name: str) -> NetworkResult:
    """``virsh net-destroy``. Returns the running VMs that lost connectivity (their NICs stay defined)."""
    _staff_only(actor)
    row = network_row(actor=actor, host_id=host.pk, name=name)
    with _net_audit(actor, "network.stop", host, name) as notes:
        net = _network(host, name)
        if not net.is_active():
            raise ConflictError(f"The network {name} is not active.", code="not_active")
        net.stop()
        notes.extend(f"disconnected {vm.name}" for vm in row.running_vms)
    lost = tuple(row.running_vms)
    message = f"{name} is stopped."
    if lost:
        message += " These running VMs lost connectivity: " + ", ".join(v.name for v in lost) + "."
    return NetworkResult(name, message, lost)


def network_delete(*, actor: Actor, host: Host, name: str) -> NetworkResult:
    """``virsh net-undefine``; an active network must be stopped first."""
    _staff_only(actor)
    with _net_audit(actor, "network.undefine", host, name):
        net = _network(host, name)
        if net.is_active():
            raise ConflictError(f"The network {name} is active: stop it first, then delete it.", code="active")
        net.undefine()
        AllowedNetwork.objects.filter(host=host, name=name).delete()
    return NetworkResult(name, f"The network {name} was deleted.")


def network_set_autostart(*, actor: Actor, host: Host, name: str, enabled: bool) -> NetworkResult:
    """``virsh net-autostart [--disable]``."""
    _staff_only(actor)
    with _net_audit(actor, "network.autostart_on" if enabled else "network.autostart_off", host, name):
        _network(host, name).set_autostart(enabled)
    return NetworkResult(name, f"Autostart is {'on' if enabled else 'off'} for {name}.")


def network_set_allowed(*, actor: Actor, host: Host, name: str, allowed: bool) -> NetworkResult:
    """Staff decide whether users may attach their VMs to this network."""
    _staff_only(actor)
    with _net_audit(actor, "network.allow" if allowed else "network.disallow", host, name):
        _network(host, name)
        if allowed:
            AllowedNetwork.objects.get_or_create(host=host, name=name, defaults={"allowed_by": actor})
        else:
            AllowedNetwork.objects.filter(host=host, name=name).delete()
    if allowed:
        return NetworkResult(name, f"Users may now attach their VMs to {name}.")
    return NetworkResult(name, f"Users may no longer attach VMs to {name} (NICs already attached stay).")


# ------------------------------------------------------------------------------------------------ VM NICs
@dataclass(frozen=True)
class NicResult:
    nic: hv.NicInfo
    live: bool  # the running guest got (or lost) it now; otherwise from the next boot
    message: str
    pending: bool = False  # detach: the guest has not released the device yet


def nic_attach(
    *, actor: Actor, vm: VirtualMachine, network: str, model: str = "virtio", mac: str | None = None,
) -> NicResult:
    """Add a NIC on ``network`` (hot-plugged when the VM runs). The MAC is generated unless given; a given
    one must be valid and unused on the host."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    errors: dict[str, list[str]] = {}
    if model not in hv.NIC_MODELS:
        errors["model"] = [f"Unknown NIC model {model!r}: use one of {', '.join(hv.NIC_MODELS)}."]
    allowed = {n.name for n in attachable_networks(actor=actor, host=vm.host)}
    if network not in allowed:
        errors["network"] = [f"You may not attach VMs to the network {network!r} on {vm.host}."]
    conn = host_connection(vm.host)
    used = {nic.mac for row in hv.domain_nics_all(conn) for nic in row.nics}
    if mac:
        try:
            mac = hv.normalize_mac(mac)
        except hv.InvalidRequest as exc:
            errors["mac"] = [exc.detail]
        else:
            if mac in used:
                errors["mac"] = [f"The MAC address {mac} is already used on {vm.host}."]
    else:
        mac = hv.random_mac(taken=used)
    if errors:
        raise ValidationError(" ".join(m for msgs in errors.values() for m in msgs), fields=errors)
    nic = hv.Interface.new(network=network, mac=mac, model=model)
    with vm_audited(actor, "vm.nic_attach", vm) as notes:
        live = dom.state().is_active
        dom.attach(nic)
        notes.append(f"{mac} on {network} ({model}){' live' if live else ''}")
    when = "now (hot-plugged)" if live else "from its next start"
    return NicResult(nic=nic.info(), live=live, message=f"{vm.name} has a new NIC {mac} on {network}, {when}.")


def _find_nic(dom: hv.Domain, vm: VirtualMachine, mac: str) -> hv.Interface:
    """The NIC with ``mac``: in the running guest (a NIC whose removal the guest has not acknowledged is still
    there), else in the definition (one added to the config only while the guest ran)."""
    try:
        wanted = hv.normalize_mac(mac)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"mac": [exc.detail]}) from None
    for doc in (dom.document(), dom.document(inactive=True)):
        nic = doc.interface(wanted)
        if nic is not None:
            return nic
    raise NotFoundError(f"{vm.name} has no network interface with MAC {wanted}.")


def nic_detach(*, actor: Actor, vm: VirtualMachine, mac: str) -> NicResult:
    """Remove a NIC. On a running guest QEMU asks the guest to release it: a guest that ignores the request
    keeps it until it powers off, while the persistent configuration loses it at once (``pending``)."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    with vm_audited(actor, "vm.nic_detach", vm) as notes:
        found = _find_nic(dom, vm, mac)
        nic = found.info()
        live = dom.state().is_active
        if live and dom.document(inactive=True).interface(nic.mac) is None:
            raise ConflictError(
                f"Removal of {nic.mac} was already requested: the guest has not released it yet. It disappears "
                f"when {vm.name} powers off.", code="detach_pending")
        dom.detach(found)
        pending = live and dom.document().interface(nic.mac) is not None
        notes.append(f"{nic.mac} from {nic.source}{' (guest has not released it yet)' if pending else ''}")
    message = f"NIC {nic.mac} removed from {vm.name}."
    if pending:
        message += (" The guest has not released it yet: it is gone from the configuration and disappears "
                    "from the running VM when the guest lets go of it or powers off.")
    return NicResult(nic=nic, live=live, pending=pending, message=message)


def nic_set_link(*, actor: Actor, vm: VirtualMachine, mac: str, up: bool) -> NicResult:
    """``virsh domif-setlink``: the guest sees its cable plugged in or pulled out (a change to its NICs: manager)."""
    dom = vm_checked(actor, vm, VmAction.MANAGE)
    with vm_audited(actor, "vm.nic_link_up" if up else "vm.nic_link_down", vm) as notes:
        found = _find_nic(dom, vm, mac)
        if found.kind != "network":
            raise ConflictError(f"The interface {found.mac} is not on a libvirt network; change it with virsh.",
                                code="not_network_nic")
        nic = hv.Interface.new(network=found.network or "", mac=found.mac, model=found.model or "virtio",
                               link_up=up)
        live = dom.state().is_active
        dom.update(nic)
        notes.append(f"{found.mac} link {'up' if up else 'down'}")
    info = nic.info()
    return NicResult(nic=info, live=live, message=f"Link of {info.mac} is {'up' if up else 'down'}.")
