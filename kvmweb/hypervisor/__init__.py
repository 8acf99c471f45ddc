"""The hypervisor layer: the only code in kvmweb that imports libvirt. It knows nothing of Django.

Use it from a shell::

    from kvmweb.hypervisor import registry, list_domains
    conn = registry.connection("qemu:///system")
    for row in list_domains(conn):
        print(row.name, row.state.label)
"""
from .domain import (
    BlockDevice,
    Domain,
    DomainInfo,
    DomainState,
    DomainSummary,
    VncDisplay,
    define,
    list_domains,
    lookup,
    lookup_by_name,
)
from .errors import (
    AlreadyExists,
    DomainNotFound,
    HostUnavailable,
    HypervisorError,
    InvalidRequest,
    NetworkNotFound,
    NotFound,
    OperationFailed,
    OperationInvalid,
    PoolNotFound,
    VolumeNotFound,
)
from .host import HostFacts, host_facts
from .names import NAME_RULE, validate_name
from .registry import Connection, registry
from .spec import DiskSpec, DomainSpec, GraphicsSpec, InterfaceSpec
from .storage import Volume, volume_for_path

__all__ = [
    "AlreadyExists", "BlockDevice", "Connection", "DiskSpec", "Domain", "DomainInfo", "DomainNotFound",
    "DomainSpec", "DomainState", "DomainSummary", "GraphicsSpec", "HostFacts", "HostUnavailable",
    "HypervisorError", "InterfaceSpec", "InvalidRequest", "NAME_RULE", "NetworkNotFound", "NotFound",
    "OperationFailed", "OperationInvalid", "PoolNotFound", "Volume", "VolumeNotFound", "VncDisplay", "define",
    "host_facts", "list_domains", "lookup", "lookup_by_name", "registry", "validate_name", "volume_for_path",
]
