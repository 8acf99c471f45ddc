"""Every change to networks and VM NICs: permission check → validation → libvirt call → audit row.

Staff define, start, stop, delete networks and decide which ones users may attach to; users add, remove and
link up/down the NICs of their own VMs, on allowed networks only.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from kvmweb import hypervisor as hv
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection
from kvmweb.hypervisor.network import NIC_MODELS
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import can_see, is_staff, vm_domain

from .models import AllowedNetwork
from .selectors import AttachedVm, attachable_networks, network_row

Actor = AbstractBaseUser | AnonymousUser


def _staff_only(actor: Actor) -> None:
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDeniedError("Log in first.")
    if not is_staff(actor):
        raise PermissionDeniedError("Only staff can manage networks.")


@contextlib.contextmanager
def _net_audit(actor: Actor, action: str, host: Host, name: str) -> Iterator[list[str]]:
    with audited(actor=actor, action=action, target_type="network", target=name, host=host.uri) as notes:
        yield notes


def _invalid(exc: hv.InvalidRequest, field: str = "name") -> ValidationError:
    fields = getattr(exc, "fields", None) or {field: [exc.detail]}
    return ValidationError(exc.detail, fields=fields)


# ------------------------------------------------------------------------------------------------ networks
def network_validate(*, host: Host, spec: hv.NetworkSpec) -> None:
    """Everything that can be checked before libvirt sees the spec: the spec itself, the name, the subnet
    against other networks and host interfaces, the bridge against other networks' bridges."""
    try:
        spec.validate()
    except hv.InvalidRequest as exc:
        raise _invalid(exc) from None
    conn = host_connection(host)
    existing = hv.list_networks(conn)
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


def network_define(*, actor: Actor, host: Host, spec: hv.NetworkSpec, allow_users: bool = False) -> hv.Network:
    """``virsh net-define``: a persistent, inactive network (and optionally open it to users)."""
    _staff_only(actor)
    network_validate(host=host, spec=spec)
    with _net_audit(actor, "network.define", host, spec.name) as notes:
        net = hv.define_network(host_connection(host), spec)
        notes.append(f"{spec.mode} {spec.subnet or 'no subnet'}")
        if allow_users:
            AllowedNetwork.objects.get_or_create(host=host, name=spec.name, defaults={"allowed_by": actor})
            notes.append("users may attach")
    return net


def _network(host: Host, name: str) -> hv.Network:
    try:
        return hv.lookup_network(host_connection(host), name)
    except hv.NetworkNotFound:
        raise NotFoundError(f"No network named {name} on {host}.") from None


def network_start(*, actor: Actor, host: Host, name: str) -> None:
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


def network_stop(*, actor: Actor, host: Host, name: str) -> list[AttachedVm]:
    """``virsh net-destroy``. Returns the running VMs that lost connectivity (their NICs stay defined)."""
    _staff_only(actor)
    row = network_row(actor=actor, host_id=host.pk, name=name)
    with _net_audit(actor, "network.stop", host, name) as notes:
        net = _network(host, name)
        if not net.is_active():
            raise ConflictError(f"The network {name} is not active.", code="not_active")
        net.stop()
        notes.extend(f"disconnected {vm.name}" for vm in row.running_vms)
    return row.running_vms


def network_delete(*, actor: Actor, host: Host, name: str) -> None:
    """``virsh net-undefine``; an active network must be stopped first."""
    _staff_only(actor)
    with _net_audit(actor, "network.undefine", host, name):
        net = _network(host, name)
        if net.is_active():
            raise ConflictError(f"The network {name} is active: stop it first, then delete it.", code="active")
        net.undefine()
        AllowedNetwork.objects.filter(host=host, name=name).delete()


def network_set_autostart(*, actor: Actor, host: Host, name: str, enabled: bool) -> None:
    """``virsh net-autostart [--disable]``."""
    _staff_only(actor)
    with _net_audit(actor, "network.autostart_on" if enabled else "network.autostart_off", host, name):
        _network(host, name).set_autostart(enabled)


def network_set_allowed(*, actor: Actor, host: Host, name: str, allowed: bool) -> None:
    """Staff decide whether users may attach their VMs to this network."""
    _staff_only(actor)
    with _net_audit(actor, "network.allow" if allowed else "network.disallow", host, name):
        _network(host, name)
        if allowed:
            AllowedNetwork.objects.get_or_create(host=host, name=name, defaults={"allowed_by": actor})
        else:
            AllowedNetwork.objects.filter(host=host, name=name).delete()


# ------------------------------------------------------------------------------------------------ VM NICs
def _check_vm(actor: Actor, vm: VirtualMachine) -> None:
    if not getattr(actor, "is_authenticated", False) or not can_see(actor, vm):
        raise NotFoundError("No such virtual machine.")


def _vm_audit(actor: Actor, action: str, vm: VirtualMachine):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="vm", target=f"{vm.name} {vm.uuid}", host=vm.host.uri)


@dataclass(frozen=True)
class NicResult:
    nic: hv.NicSpec
    live: bool  # the running guest got (or lost) it now; otherwise from the next boot
    pending: bool = False  # detach: the guest has not released the device yet


def nic_attach(
    *, actor: Actor, vm: VirtualMachine, network: str, model: str = "virtio", mac: str | None = None,
) -> NicResult:
    """Add a NIC on ``network`` (hot-plugged when the VM runs). The MAC is generated unless given; a given
    one must be valid and unused on the host."""
    _check_vm(actor, vm)
    errors: dict[str, list[str]] = {}
    if model not in NIC_MODELS:
        errors["model"] = [f"Unknown NIC model {model!r}: use one of {', '.join(NIC_MODELS)}."]
    allowed = {n.name for n in attachable_networks(actor=actor, host=vm.host)}
    if network not in allowed:
        errors["network"] = [f"You may not attach VMs to the network {network!r} on {vm.host}."]
    conn = host_connection(vm.host)
    used = {nic.mac for dom in hv.all_domain_nics(conn) for nic in dom.nics}
    if mac:
        try:
            mac = hv.normalize_mac(mac)
        except hv.InvalidRequest as exc:
            errors["mac"] = [exc.detail]
        else:
            if mac in used:
                errors["mac"] = [f"The MAC address {mac} is already used on {vm.host}."]
    else:
        mac = hv.random_mac()
        while mac in used:
            mac = hv.random_mac()
    if errors:
        raise ValidationError(" ".join(m for msgs in errors.values() for m in msgs), fields=errors)
    spec = hv.NicSpec(network=network, mac=mac, model=model)
    with _vm_audit(actor, "vm.nic_attach", vm) as notes:
        dom = vm_domain(vm)
        live = dom.state().is_active
        dom.attach_device(spec.to_xml())
        notes.append(f"{mac} on {network} ({model}){' live' if live else ''}")
    return NicResult(nic=spec, live=live)


def _find_nic(dom: hv.Domain, vm: VirtualMachine, mac: str) -> tuple[hv.DomainNic, str]:
    try:
        wanted = hv.normalize_mac(mac)
    except hv.InvalidRequest as exc:
        raise ValidationError(exc.detail, fields={"mac": [exc.detail]}) from None
    xml = dom.xml()
    for nic in hv.domain_nics(xml):
        if nic.mac == wanted:
            return nic, xml
    # a NIC detached from a running guest that has not released it is still in the live XML; one only in the
    # persistent config (added while running with a config-only change) is looked up there
    inactive = dom.xml(inactive=True)
    for nic in hv.domain_nics(inactive):
        if nic.mac == wanted:
            return nic, inactive
    raise NotFoundError(f"{vm.name} has no network interface with MAC {wanted}.")


def nic_detach(*, actor: Actor, vm: VirtualMachine, mac: str) -> NicResult:
    """Remove a NIC. On a running guest QEMU asks the guest to release it: a guest that ignores the request
    keeps it until it powers off, while the persistent configuration loses it at once (``pending``)."""
    _check_vm(actor, vm)
    with _vm_audit(actor, "vm.nic_detach", vm) as notes:
        dom = vm_domain(vm)
        nic, xml = _find_nic(dom, vm, mac)
        element = hv.nic_element(xml, nic.mac)
        assert element is not None
        live = dom.state().is_active
        if live and not any(n.mac == nic.mac for n in hv.domain_nics(dom.xml(inactive=True))):
            raise ConflictError(
                f"Removal of {nic.mac} was already requested: the guest has not released it yet. It disappears "
                f"when {vm.name} powers off.", code="detach_pending")
        dom.detach_device(element)
        pending = live and any(n.mac == nic.mac for n in hv.domain_nics(dom.xml()))
        notes.append(f"{nic.mac} from {nic.source}{' (guest has not released it yet)' if pending else ''}")
    return NicResult(nic=nic.spec(), live=live, pending=pending)


def nic_set_link(*, actor: Actor, vm: VirtualMachine, mac: str, up: bool) -> NicResult:
    """``virsh domif-setlink``: the guest sees its cable plugged in or pulled out."""
    _check_vm(actor, vm)
    with _vm_audit(actor, "vm.nic_link_up" if up else "vm.nic_link_down", vm) as notes:
        dom = vm_domain(vm)
        nic, _xml = _find_nic(dom, vm, mac)
        if nic.type != "network":
            raise ConflictError(f"The interface {nic.mac} is not on a libvirt network; change it with virsh.",
                                code="not_network_nic")
        spec = hv.NicSpec(network=nic.source, mac=nic.mac, model=nic.model or "virtio", link_up=up)
        live = dom.state().is_active
        dom.update_device(spec.to_xml())
        notes.append(f"{nic.mac} link {'up' if up else 'down'}")
    return NicResult(nic=spec, live=live)
