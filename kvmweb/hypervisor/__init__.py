"""The hypervisor layer: the only code in kvmweb that imports libvirt. It knows nothing of Django.

Callers import from this package only (``from kvmweb import hypervisor as hv``). Its naming: handles
(:class:`Domain`, :class:`Pool`, :class:`Volume`, :class:`Network`) carry their verbs as methods; every function
here that talks to libvirt starts with the noun it reads or changes (``domain_list``, ``pool_lookup``,
``network_define``, ``host_facts``...); pure helpers are plain verbs (``validate_name``, ``parse_size``).
Domain XML has one model, :class:`DomainDocument`, for new domains and edits alike.

Use it from a shell::

    from kvmweb import hypervisor as hv
    conn = hv.registry.connection("qemu:///system")
    for row in hv.domain_list(conn):
        print(row.name, row.state.label)
"""
from .backups import BackupSpec, BackupTarget, DomainJob
from .console import SerialConsole
from .domain import (
    BlockJobProgress,
    DiskUse,
    Domain,
    DomainEntry,
    DomainInfo,
    DomainNics,
    DomainState,
    DomainSummary,
    domain_define,
    domain_disk_users,
    domain_entries,
    domain_exists,
    domain_fill_sizes,
    domain_list,
    domain_lookup,
    domain_lookup_by_name,
    domain_nics_all,
    domain_summaries,
)
from .domain_xml import (
    BOOT_DEVICES,
    CDROM_BUSES,
    DISK_BUSES,
    GUEST_AGENT_CHANNEL,
    IDE_TARGETS,
    NIC_MODELS,
    Channel,
    Console,
    Controller,
    Device,
    Disk,
    DiskInfo,
    DomainDocument,
    Graphics,
    Input,
    Interface,
    MemBalloon,
    NicInfo,
    Rng,
    Serial,
    Video,
    VncDisplay,
    clone_file_path,
    free_disk_target,
    normalize_mac,
    random_mac,
)
from .errors import (
    AlreadyExists,
    DomainNotFound,
    DomainNotRunning,
    HostKeyChanged,
    HostUnavailable,
    HypervisorError,
    InvalidRequest,
    NetworkNotFound,
    NotFound,
    OperationFailed,
    OperationInvalid,
    PoolNotFound,
    SnapshotNotFound,
    VolumeNotFound,
    shorten_uri,
)
from .console import ConsoleBusy, NoGraphics, NoSerialConsole
from .events import DomainEvent, DomainEventListener
from .guest import (
    GuestFilesystem, GuestInfo, GuestInterface, guest_info, guest_run_id, parse_guest_info, parse_interfaces,
)
from .host import (
    HostDetails, HostFacts, NumaCell, host_details, host_facts, host_hypervisor_version, host_video_models,
)
from .migration import (
    HostCapacity,
    LiveMigration,
    MigrationStats,
    domain_migrate_offline,
    domain_migration_stats,
    host_capacity,
    migration_address,
    migration_flags,
    pool_for_path,
    volume_copy,
    volume_prepare,
)
from .names import NAME_RULE, validate_name
from .networks import (
    FORWARD_MODES,
    AddressUser,
    DhcpHost,
    DhcpLease,
    Network,
    NetworkInfo,
    NetworkSpec,
    NetworkSpecInvalid,
    NetworkSummary,
    check_overlaps,
    host_address_users,
    host_interface_names,
    network_define,
    network_list,
    network_lookup,
)
from .pools import (
    Pool, PoolInfo, PoolSpec, PoolState, pool_define, pool_ensure, pool_list, pool_lookup, volume_backing_users,
)
from .registry import Connection, registry
from .snapshots import (
    RUNNING_WITHOUT_MEMORY,
    SNAPSHOT_DESCRIPTION_MAX,
    SnapshotInfo,
    SnapshotNode,
    SnapshotSpec,
    arrange_tree,
    descendants,
    snapshot_create,
    snapshot_delete,
    snapshot_disks,
    snapshot_exists,
    snapshot_get,
    snapshot_list,
    snapshot_refusal,
    snapshot_revert,
)
from .stats import DomainStats, HostStats, domain_stats_all, host_stats
from .units import SIZE_HELP, GiB, KiB, MiB, TiB, SizeInvalid, SizeRequest, human, parse_size
from .volumes import (
    STREAM_CHUNK,
    VOLUME_FORMATS,
    ImageInfo,
    Volume,
    VolumeInfo,
    VolumeSpec,
    check_qcow2_header,
    file_name_for,
    looks_like_iso9660,
    path_inside,
    read_head,
    split_ext,
    validate_volume_name,
    volume_by_path,
    volume_image_info,
)

__all__ = [
    # connections and errors
    "Connection", "registry", "AlreadyExists", "DomainNotFound", "DomainNotRunning", "HostKeyChanged", "HostUnavailable",
    "ConsoleBusy", "HypervisorError", "InvalidRequest", "NetworkNotFound", "NoGraphics", "NoSerialConsole", "NotFound",
    "OperationFailed", "OperationInvalid", "PoolNotFound", "SnapshotNotFound", "VolumeNotFound", "shorten_uri",
    # names and sizes
    "NAME_RULE", "SIZE_HELP", "validate_name", "validate_volume_name", "GiB", "KiB", "MiB", "TiB", "SizeInvalid", "SizeRequest",
    "human", "parse_size",
    # domains
    "BlockJobProgress", "DiskUse", "Domain", "DomainEntry", "DomainInfo", "DomainNics", "DomainState", "DomainSummary",
    "SerialConsole", "domain_define", "domain_disk_users", "domain_entries", "domain_exists", "domain_fill_sizes", "domain_list",
    "domain_lookup", "domain_lookup_by_name", "domain_nics_all", "domain_summaries", "DomainEvent", "DomainEventListener",
    # what the guest says (its agent, or DHCP leases)
    "GuestFilesystem", "GuestInfo", "GuestInterface", "guest_info", "guest_run_id", "parse_guest_info",
    "parse_interfaces",
    # backups (push mode) and domain jobs
    "BackupSpec", "BackupTarget", "DomainJob",
    # domain XML
    "BOOT_DEVICES", "CDROM_BUSES", "DISK_BUSES", "GUEST_AGENT_CHANNEL", "IDE_TARGETS", "NIC_MODELS", "Channel",
    "Console", "Controller", "Device", "Disk", "DiskInfo", "DomainDocument", "Graphics", "Input", "Interface", "MemBalloon",
    "NicInfo", "Rng", "Serial", "Video", "VncDisplay", "clone_file_path", "free_disk_target", "normalize_mac",
    "random_mac",
    # snapshots (internal, qcow2)
    "RUNNING_WITHOUT_MEMORY", "SNAPSHOT_DESCRIPTION_MAX", "SnapshotInfo", "SnapshotNode", "SnapshotSpec",
    "arrange_tree", "descendants", "snapshot_create", "snapshot_delete", "snapshot_disks", "snapshot_exists",
    "snapshot_get", "snapshot_list", "snapshot_refusal", "snapshot_revert",
    # moving domains between hosts, and what a host has room for
    "HostCapacity", "LiveMigration", "MigrationStats", "domain_migrate_offline", "domain_migration_stats",
    "host_capacity", "migration_address", "migration_flags", "pool_for_path", "volume_copy", "volume_prepare",
    # hosts
    "HostDetails", "HostFacts", "NumaCell", "host_details", "host_facts", "host_hypervisor_version", "host_video_models", "host_address_users",
    "host_interface_names",
    # usage counters (monitoring)
    "DomainStats", "HostStats", "domain_stats_all", "host_stats",
    # networks
    "FORWARD_MODES", "AddressUser", "DhcpHost", "DhcpLease", "Network", "NetworkInfo", "NetworkSpec",
    "NetworkSpecInvalid", "NetworkSummary", "check_overlaps", "network_define", "network_list", "network_lookup",
    # storage
    "Pool", "PoolInfo", "PoolSpec", "PoolState", "pool_define", "pool_ensure", "pool_list", "pool_lookup",
    "STREAM_CHUNK", "VOLUME_FORMATS", "Volume", "VolumeInfo", "VolumeSpec", "file_name_for", "looks_like_iso9660",
    "path_inside",
    "read_head", "split_ext", "volume_by_path",
    # disk images (the image library)
    "ImageInfo", "check_qcow2_header", "volume_backing_users", "volume_image_info",
]
