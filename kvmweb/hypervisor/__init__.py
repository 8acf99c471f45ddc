"""The hypervisor layer: the only code in kvmweb that imports libvirt. It knows nothing of Django.

Use it from a shell::

    from kvmweb.hypervisor import registry, list_domains
    conn = registry.connection("qemu:///system")
    for row in list_domains(conn):
        print(row.name, row.state.label)
"""
from .console import NoGraphics, NoSerialConsole, SerialConsole, open_vnc_socket
from .domain import (
    BlockDevice,
    Domain,
    DomainInfo,
    DomainState,
    DomainSummary,
    VncDisplay,
    define,
    fill_sizes,
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
from .events import DomainEvent, DomainEventListener
from .host import HostFacts, host_facts
from .media import create_media_volume, ensure_dir_pool, looks_like_iso9660, read_head
from .names import NAME_RULE, validate_name
from .network import (
    AddressUser,
    DhcpHost,
    DhcpLease,
    DomainNic,
    DomainNics,
    Network,
    NetworkInfo,
    NetworkSpec,
    NetworkSpecInvalid,
    NetworkSummary,
    NicSpec,
    all_domain_nics,
    check_overlaps,
    define_network,
    domain_nics,
    host_address_users,
    host_interface_names,
    list_networks,
    lookup_network,
    nic_addresses,
    nic_element,
    normalize_mac,
    random_mac,
    with_addresses,
)
from .registry import Connection, registry
from .spec import DiskSpec, DomainSpec, GraphicsSpec, InterfaceSpec
from .storage import Volume, volume_for_path
from .storage import (  # storage pools, volumes, disks (issue 5)
    DiskUse, Pool, PoolInfo, PoolSpec, PoolState, VolumeInfo, VolumeSpec, block_resize, boot_order,
    clone_domain_xml, define_xml, disk_users, disk_xml, list_pools, pool_define, pool_lookup, set_boot_order,
    validate_volume_name,
)

__all__ = [
    "AlreadyExists", "BlockDevice", "DomainEvent", "DomainEventListener", "Connection", "DiskSpec", "Domain", "DomainInfo", "DomainNotFound",
    "DomainSpec", "DomainState", "DomainSummary", "GraphicsSpec", "HostFacts", "HostUnavailable",
    "HypervisorError", "InterfaceSpec", "InvalidRequest", "NAME_RULE", "NetworkNotFound", "NotFound",
    "OperationFailed", "OperationInvalid", "PoolNotFound", "Volume", "VolumeNotFound", "VncDisplay", "define", "fill_sizes",
    "host_facts", "list_domains", "lookup", "lookup_by_name", "registry", "validate_name", "volume_for_path",
    "NoGraphics", "NoSerialConsole", "SerialConsole", "open_vnc_socket",
]
__all__ += [
    "AddressUser", "DhcpHost", "DhcpLease", "DomainNic", "DomainNics", "Network", "NetworkInfo",
    "NetworkSpec", "NetworkSpecInvalid", "NetworkSummary", "NicSpec", "all_domain_nics", "check_overlaps",
    "define_network", "domain_nics", "host_address_users",
    "host_interface_names", "list_networks", "lookup_network", "nic_addresses",
    "nic_element", "normalize_mac", "random_mac",
    "with_addresses",
]
__all__ += [
    "DiskUse", "Pool", "PoolInfo", "PoolSpec", "PoolState", "VolumeInfo", "VolumeSpec", "block_resize",
    "boot_order", "clone_domain_xml", "disk_users", "disk_xml", "list_pools", "pool_define", "pool_lookup",
    "set_boot_order", "validate_volume_name", "define_xml",
]
__all__ += ["create_media_volume", "ensure_dir_pool", "looks_like_iso9660", "read_head"]
