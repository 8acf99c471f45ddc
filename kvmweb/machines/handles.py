"""The libvirt handle of a VM record: for this app's selectors and services and the services of the apps above it.
Pages, the API and websockets never hold one (tests/test_architecture.py); selectors use it to read and return
plain data."""
from __future__ import annotations

from kvmweb import hypervisor as hv
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.services import host_connection

from .models import VirtualMachine


def vm_handle(vm: VirtualMachine) -> hv.Domain:
    """The domain of a record (no permission check: callers checked who asks). A domain deleted outside the portal
    is a NotFoundError."""
    try:
        return hv.domain_lookup(host_connection(vm.host), str(vm.uuid))
    except hv.DomainNotFound:
        raise NotFoundError(f"The virtual machine {vm.name} no longer exists on {vm.host}.") from None
