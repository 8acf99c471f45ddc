"""The libvirt handle of a VM record: for this app's selectors and services and the services of the apps above it.
Pages, the API and websockets never hold one (tests/test_architecture.py); selectors use it to read and return
plain data."""
from __future__ import annotations

from kvmweb import hypervisor as hv
from kvmweb.core.errors import ConflictError, NotFoundError
from kvmweb.hosts.services import host_connection

from kvmweb.jobs.models import Job

from .models import VirtualMachine

MIGRATE_KIND = "vm.migrate"  # the fleet app's job that moves a VM to another host


def vm_moving(uuid: str) -> bool:
    """Whether a job is moving the VM to another host now (its domain may be on neither host's list for a moment,
    and its record follows only when the move ends: nothing may drop the record meanwhile)."""
    return bool(Job.objects.filter(kind=MIGRATE_KIND, target=str(uuid), state__in=Job.UNFINISHED).exists())


def vm_handle(vm: VirtualMachine) -> hv.Domain:
    """The domain of a record (no permission check: callers checked who asks). A domain deleted outside the portal
    is a NotFoundError. A record that moved to another host meanwhile (a migration) is followed there; while a move
    runs and the domain is on neither host's list for a moment, the answer is a ConflictError ("moving"), never a
    NotFoundError that would make pages drop the VM."""
    try:
        return hv.domain_lookup(host_connection(vm.host), str(vm.uuid))
    except hv.DomainNotFound:
        moved = VirtualMachine.objects.select_related("host").filter(pk=vm.pk).exclude(host_id=vm.host_id).first()
        if moved is not None:
            vm.host = moved.host
            return vm_handle(vm)
        if vm_moving(str(vm.uuid)):
            raise ConflictError(f"{vm.name} is moving to another host: try again in a moment.",
                                code="migrating") from None
        raise NotFoundError(f"The virtual machine {vm.name} no longer exists on {vm.host}.") from None
