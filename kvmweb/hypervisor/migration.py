"""Moving a domain to another host: live migration (``virsh migrate --live --persistent --undefinesource``),
offline migration of a shut-off domain (define there, copy the disks, undefine here), and what a host has room for.

**Live.** :class:`LiveMigration` runs ``virDomainMigrate3`` (flags LIVE | PERSIST_DEST | UNDEFINE_SOURCE, plus
NON_SHARED_DISK when the disks are copied) in a thread of its own while the caller polls :meth:`LiveMigration.stats`
(``virsh domjobinfo``: data processed/remaining/total, iterations, downtime) and may :meth:`LiveMigration.abort`
(``virsh domjobabort``: the guest keeps running where it was). The destination QEMU listens on the destination's
*migration address* — ``tcp://ADDRESS`` as ``VIR_MIGRATE_PARAM_URI`` and ``ADDRESS`` as
``VIR_MIGRATE_PARAM_LISTEN_ADDRESS`` — so the same call works both ways even where a host's own name resolves to a
loopback address. :func:`migration_address` derives it from the host's URI (its host part); a local URI
(``qemu:///system``) has none and the caller must name one.

**Disks.** Without copying, every writable disk must be a volume the destination sees at the same path (shared
storage, a pool on both hosts). With copying (``NON_SHARED_DISK``) QEMU mirrors each writable disk over NBD into a
volume :func:`volume_prepare` made beforehand on the destination: same path, format and size, in the destination's
pool whose folder holds that path. A disk on a local folder both hosts see (one machine, a cluster file system
libvirt does not recognise) needs ``unsafe``: libvirt cannot tell that the cache is coherent.

**Offline.** :func:`domain_migrate_offline`: the full definition (``INACTIVE | SECURE``: a VNC password survives) is
defined on the destination, each writable disk is streamed from a source volume into a volume made there
(``virStorageVolDownload`` → ``virStorageVolUpload``), and only then is the source undefined; on any failure what was
made on the destination is removed again.
"""
from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import libvirt

from .domain import Domain, domain_lookup
from .domain_xml import DomainDocument
from .errors import AlreadyExists, DomainNotFound, HypervisorError, InvalidRequest, NotFound, OperationFailed
from .pools import Pool, pool_list, pool_lookup
from .registry import Connection
from .volumes import Volume, VolumeSpec, volume_by_path
from .xmlnode import parse_element

LIVE_FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
_ACTIVE = (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED)


def migration_flags(*, copy_storage: bool, unsafe: bool = False) -> int:
    """The flags of a live migration (``virsh migrate --live --persistent --undefinesource [--copy-storage-all]
    [--unsafe]``)."""
    flags = int(LIVE_FLAGS)
    if copy_storage:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    if unsafe:
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    return flags


def migration_address(uri: str) -> str:
    """The host part of a libvirt URI (``qemu+ssh://root@10.0.0.5:2222/system`` → ``10.0.0.5``); "" for a local
    URI such as ``qemu:///system``."""
    try:
        return urlsplit(uri).hostname or ""
    except ValueError:
        return ""


def migration_params(address: str, *, disks: tuple[str, ...] = (), bandwidth_mib: int = 0) -> dict[str, Any]:
    """``virDomainMigrate3``'s parameters: where the destination listens, which disks are copied, and the most
    MiB/s it may send (``virsh migrate --bandwidth``; 0: no limit)."""
    if not address:
        raise InvalidRequest("The destination has no migration address.")
    host = f"[{address}]" if ":" in address else address
    params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{host}",
                              libvirt.VIR_MIGRATE_PARAM_LISTEN_ADDRESS: address}
    if disks:
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(disks)
    if bandwidth_mib > 0:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth_mib
    return params


# ------------------------------------------------------------------------------------------------ job statistics
@dataclass(frozen=True)
class MigrationStats:
    """What ``virsh domjobinfo`` says of a migration: memory and disk bytes, iterations, downtime."""

    active: bool
    data_processed: int
    data_remaining: int
    data_total: int
    disk_processed: int = 0
    disk_total: int = 0
    iterations: int = 0  # memory passes ("memory_iteration")
    downtime_ms: int = 0  # the pause at the switch-over (a finished migration's)
    elapsed_ms: int = 0
    success: bool | None = None
    error: str = ""

    @property
    def percent(self) -> int:
        """Done of (done + still to send), disks and memory together: memory that the guest dirties again is
        counted again, so this may step back a little between passes."""
        done = self.data_processed + self.disk_processed
        todo = self.data_remaining + max(0, self.disk_total - self.disk_processed)
        return int(100 * done / (done + todo)) if done + todo else 0


def parse_migration_stats(stats: dict[str, Any]) -> MigrationStats | None:
    kind = int(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE))
    if kind == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    success: bool | None = None
    if kind == libvirt.VIR_DOMAIN_JOB_COMPLETED:
        success = bool(stats.get("success", True))
    elif kind in (libvirt.VIR_DOMAIN_JOB_FAILED, libvirt.VIR_DOMAIN_JOB_CANCELLED):
        success = False
    return MigrationStats(
        active=kind in _ACTIVE, data_processed=int(stats.get("data_processed", 0)),
        data_remaining=int(stats.get("data_remaining", 0)), data_total=int(stats.get("data_total", 0)),
        disk_processed=int(stats.get("disk_processed", 0)), disk_total=int(stats.get("disk_total", 0)),
        iterations=int(stats.get("memory_iteration", 0)), downtime_ms=int(stats.get("downtime", 0)),
        elapsed_ms=int(stats.get("time_elapsed", 0)), success=success, error=str(stats.get("errmsg", "")))


def domain_migration_stats(dom: Domain, *, completed: bool = False) -> MigrationStats | None:
    """The running (or, ``completed``, the last finished) job of ``dom`` as migration statistics."""
    flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0
    return parse_migration_stats(dom.job_stats(flags))


# ------------------------------------------------------------------------------------------------ live
class LiveMigration:
    """One live migration in a thread: ``start()``, poll ``stats()``, maybe ``abort()``, then ``wait()``.

    libvirt-python releases the interpreter lock during the call, and the statistics and the abort go through the
    same connection concurrently (libvirt allows job queries and abort while a migration job runs)."""

    def __init__(self, dom: Domain, dest: Connection, *, address: str, copy_storage: bool,
                 disks: tuple[str, ...] = (), unsafe: bool = False, bandwidth_mib: int = 0) -> None:
        self.dom = dom
        self.dest = dest
        self.flags = migration_flags(copy_storage=copy_storage, unsafe=unsafe)
        self.params = migration_params(address, disks=disks if copy_storage else (), bandwidth_mib=bandwidth_mib)
        self._thread = threading.Thread(target=self._run, name=f"migrate-{dom.name}", daemon=True)
        self._error: BaseException | None = None
        self._done = threading.Event()

    def _run(self) -> None:
        try:
            dest = self.dest.get()
            self.dom.conn.run(lambda: self.dom.raw.migrate3(dest, self.params, self.flags))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            self._error = exc
        finally:
            self._done.set()

    def start(self) -> LiveMigration:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def stats(self) -> MigrationStats | None:
        """The migration job's statistics now; None before it started or after it ended."""
        try:
            return domain_migration_stats(self.dom)
        except (NotFound, HypervisorError):
            return None

    def abort(self) -> None:
        """Stop the migration (``virsh domjobabort``): the guest keeps running on the source."""
        try:
            self.dom.job_abort()
        except HypervisorError:
            pass  # it ended meanwhile: wait() says how

    def wait(self, timeout: float | None = None) -> Domain:
        """Wait for the end; the domain on the destination, or the (translated) error of the migration."""
        if not self._done.wait(timeout):
            raise OperationFailed("The migration did not end in time.")
        if self._error is not None:
            raise self._error
        return domain_lookup(self.dest, self.dom.uuid)


# ------------------------------------------------------------------------------------------------ storage
def pool_for_path(conn: Connection, path: str) -> Pool | None:
    """The active pool of ``conn`` whose folder holds ``path`` directly; None when none does."""
    folder = posixpath.dirname(path)
    for info in pool_list(conn):
        if info.active and info.target_path and posixpath.normpath(info.target_path) == folder:
            pool = pool_lookup(conn, info.name)
            pool.refresh()
            return pool
    return None


def volume_prepare(source: Volume, dest: Connection) -> Volume:
    """An empty volume on ``dest`` at ``source``'s path, of its format and size (what a disk copy writes into).
    Refused when the destination has no pool at that folder or already has a file there."""
    pool = pool_for_path(dest, source.path)
    if pool is None:
        raise InvalidRequest(f"The destination has no storage pool in {posixpath.dirname(source.path)}: define one "
                             "there (the copy keeps the disk's path).")
    name = posixpath.basename(source.path)
    if pool.has_volume(name):
        raise AlreadyExists(f"The destination has a file {source.path} already: it is not overwritten.")
    spec = source.spec()
    return pool.create_volume(VolumeSpec(name=name, capacity=spec.capacity, format=spec.format,
                                         compat=spec.compat if spec.format == "qcow2" else VolumeSpec.compat))


def volume_copy(source: Volume, target: Volume, *, progress: Callable[[int], None] | None = None) -> int:
    """Stream ``source``'s bytes (as they are on disk) into ``target`` over the two connections; returns the bytes
    sent. ``progress(bytes_so_far)`` is called per chunk and may raise to stop the copy."""
    length = source.spec().physical or source.spec().capacity

    def chunks() -> Any:
        sent = 0
        for chunk in source.download():
            sent += len(chunk)
            if progress is not None:
                progress(sent)
            yield chunk

    return target.upload(chunks(), length=length)


# ------------------------------------------------------------------------------------------------ offline
def _offset(progress: Callable[[int, int], None] | None, base: int, total: int) -> Callable[[int], None] | None:
    """One disk's ``progress(bytes)`` as the whole copy's ``progress(done, total)``."""
    if progress is None:
        return None
    report = progress
    return lambda sent: report(base + sent, total)


def domain_migrate_offline(dom: Domain, dest: Connection, *, disks: tuple[str, ...],
                           progress: Callable[[int, int], None] | None = None) -> Domain:
    """Move a shut-off persistent domain: define its full definition on ``dest``, copy the writable disks whose
    paths are in ``disks`` into volumes made there (same path, format, size), then undefine it here. Any failure
    (``progress(done, total)`` may raise to cancel) removes what was made on the destination; the source is
    untouched until the very end."""
    if dom.state().is_active:
        raise InvalidRequest(f"{dom.name} runs: an offline migration moves a shut-off VM.")
    doc: DomainDocument = dom.definition()
    try:
        domain_lookup(dest, dom.uuid)
    except DomainNotFound:
        pass
    else:
        raise AlreadyExists(f"The destination has a domain with {dom.name}'s UUID already.")
    sources: list[Volume] = []
    for path in disks:
        volume = volume_by_path(dom.conn, path)
        if volume is None:
            raise InvalidRequest(f"The disk {path} is not a volume of a storage pool: it cannot be copied.")
        sources.append(volume)
    total = sum(v.spec().physical or v.spec().capacity for v in sources)
    made: list[Volume] = []
    moved: Domain | None = None
    try:
        for volume in sources:
            made.append(volume_prepare(volume, dest))
        done = 0
        for source, target in zip(sources, made, strict=True):
            volume_copy(source, target, progress=_offset(progress, done, total))
            done += source.spec().physical or source.spec().capacity
        xml = doc.to_xml()
        moved = Domain(dest, dest.call(lambda c: c.defineXML(xml)))
        if progress is not None:
            progress(total, total)
        dom.undefine()
    except BaseException:
        if moved is not None:
            try:
                moved.undefine()
            except HypervisorError:
                pass
        for target in made:
            try:
                target.delete()
            except HypervisorError:
                pass
        raise
    return moved


# ------------------------------------------------------------------------------------------------ host capacity
@dataclass(frozen=True)
class HostCapacity:
    """A host's CPUs and memory, and what its active guests are given (vCPUs, memory at boot)."""

    cpus: int
    memory_kib: int
    vcpus_used: int
    memory_used_kib: int
    guests: int
    cpu_model: str = ""


def host_capacity(conn: Connection) -> HostCapacity:
    """``virsh nodeinfo`` and one bulk ``virsh domstats --state --vcpu --balloon`` (the test driver, whose bulk
    stats lack sizes, costs one ``info()`` per active domain)."""
    _model, memory_mib, cpus, *_rest = conn.call(lambda c: c.getInfo())
    groups = libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_BALLOON
    rows = conn.call(lambda c: c.getAllDomainStats(groups, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE))
    vcpus = memory = 0
    for dom, values in rows:
        if "vcpu.current" in values and "balloon.current" in values:
            vcpus += int(values["vcpu.current"])
            memory += int(values["balloon.current"])
            continue
        try:
            _state, _max, current, count, _cpu = conn.run(dom.info)
        except NotFound:
            continue
        vcpus += int(count)
        memory += int(current)
    caps = parse_element(conn.call(lambda c: c.getCapabilities()))
    return HostCapacity(cpus=int(cpus), memory_kib=int(memory_mib) * 1024, vcpus_used=vcpus,
                        memory_used_kib=memory, guests=len(rows),
                        cpu_model=caps.findtext("host/cpu/model", default="") or "")
