"""Every change to a virtual machine: permission check, validation, the libvirt call, an audit row."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from kvmweb import hypervisor as hv
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_connection

from .models import VirtualMachine
from .selectors import can_see, is_staff, vm_domain

Actor = AbstractBaseUser | AnonymousUser


def _check(actor: Actor, vm: VirtualMachine) -> None:
    if not getattr(actor, "is_authenticated", False) or not can_see(actor, vm):
        raise NotFoundError("No such virtual machine.")


def _audit(actor: Actor, action: str, vm: VirtualMachine):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="vm", target=f"{vm.name} {vm.uuid}", host=vm.host.uri)


def vm_start(*, actor: Actor, vm: VirtualMachine) -> None:
    _check(actor, vm)
    with _audit(actor, "vm.start", vm):
        dom = vm_domain(vm)
        if dom.state().is_active:
            raise ConflictError(f"{vm.name} is already running.", code="already_running")
        dom.start()


def vm_shutdown(*, actor: Actor, vm: VirtualMachine) -> None:
    """Ask the guest to shut down (ACPI). The guest must cooperate; the state changes when it has."""
    _check(actor, vm)
    with _audit(actor, "vm.shutdown", vm):
        dom = vm_domain(vm)
        if not dom.state().is_active:
            raise ConflictError(f"{vm.name} is not running.", code="not_running")
        dom.shutdown()


def vm_reboot(*, actor: Actor, vm: VirtualMachine) -> None:
    _check(actor, vm)
    with _audit(actor, "vm.reboot", vm):
        dom = vm_domain(vm)
        if not dom.state().is_active:
            raise ConflictError(f"{vm.name} is not running.", code="not_running")
        dom.reboot()


def vm_force_off(*, actor: Actor, vm: VirtualMachine) -> None:
    """Pull the plug (``virsh destroy``): the guest gets no chance to save anything."""
    _check(actor, vm)
    with _audit(actor, "vm.force_off", vm):
        dom = vm_domain(vm)
        if not dom.state().is_active:
            raise ConflictError(f"{vm.name} is already shut off.", code="not_running")
        dom.destroy()


def vm_set_autostart(*, actor: Actor, vm: VirtualMachine, enabled: bool) -> None:
    _check(actor, vm)
    with _audit(actor, "vm.autostart_on" if enabled else "vm.autostart_off", vm):
        vm_domain(vm).set_autostart(enabled)


@dataclass
class DeleteResult:
    deleted_volumes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # disk files left in place, with the reason
    failed: list[str] = field(default_factory=list)  # volumes libvirt refused to delete, with its reason


def vm_delete(*, actor: Actor, vm: VirtualMachine, delete_volumes: bool = False) -> DeleteResult:
    """Undefine a shut-off VM (with its NVRAM, managed-save image and snapshot metadata), and optionally the
    storage volumes of its writable disks. Shared and read-only media (ISOs) are never deleted."""
    _check(actor, vm)
    result = DeleteResult()
    with _audit(actor, "vm.delete_with_volumes" if delete_volumes else "vm.delete", vm) as notes:
        dom = vm_domain(vm)
        if dom.state().is_active:
            raise ConflictError(
                f"{vm.name} is running: force it off first, then delete it.", code="vm_running",
            )
        conn = host_connection(vm.host)
        volumes: list[hv.Volume] = []
        if delete_volumes:
            for disk in dom.spec(inactive=True).disks:
                if disk.device != "disk" or not disk.source:
                    continue
                if disk.readonly or disk.shared_media:
                    result.kept.append(f"{disk.source} (read-only or shared)")
                    continue
                volume = hv.volume_for_path(conn, disk.source)
                if volume is None:
                    result.kept.append(f"{disk.source} (not in a storage pool)")
                else:
                    volumes.append(volume)
        dom.undefine()
        VirtualMachine.objects.filter(pk=vm.pk).delete()
        for volume in volumes:
            try:
                volume.delete()
                result.deleted_volumes.append(volume.path)
            except hv.HypervisorError as exc:
                result.failed.append(f"{volume.path}: {exc.detail}")
        notes.extend(f"deleted {p}" for p in result.deleted_volumes)
        notes.extend(f"kept {p}" for p in result.kept)
        notes.extend(f"could not delete {p}" for p in result.failed)
    return result


def vm_define(
    *, actor: Actor, host: Host, spec: hv.DomainSpec, owner: AbstractBaseUser | None = None,
) -> VirtualMachine:
    """Define a domain from a typed spec and record who owns it (the actor, unless staff name another owner)."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDeniedError("Log in first.")
    if owner is not None and owner != actor and not is_staff(actor):
        raise PermissionDeniedError("Only staff can create virtual machines for someone else.")
    spec.validate()
    conn = host_connection(host)
    with audited(actor=actor, action="vm.define", target_type="vm", target=spec.name, host=host.uri):
        try:
            hv.lookup_by_name(conn, spec.name)
        except hv.DomainNotFound:
            pass
        else:
            raise ConflictError(f"A virtual machine named {spec.name} already exists on {host}.", code="name_taken")
        dom = hv.define(conn, spec)
        try:
            return VirtualMachine.objects.create(
                host=host, uuid=dom.uuid, name=dom.name, owner=owner or actor,  # type: ignore[misc]
            )
        except Exception:
            dom.undefine()
            raise
