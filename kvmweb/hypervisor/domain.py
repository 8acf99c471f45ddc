"""Domains: bulk listings, and :class:`Domain`, a handle that carries every verb the portal uses.

``virsh list --all`` → :func:`domain_list` (or, for thousands of domains, :func:`domain_entries` and then
:func:`domain_summaries` of the page shown); ``virsh dominfo`` → :meth:`Domain.info`; ``virsh start/shutdown/
reboot/destroy/suspend/resume/undefine/autostart`` → methods of the same names; ``virsh attach-device/
detach-device/update-device`` → :meth:`Domain.attach`/:meth:`Domain.detach`/:meth:`Domain.update` with typed
devices; ``virsh backup-begin/domjobinfo/domjobabort`` → :meth:`Domain.backup_begin`/:meth:`Domain.job`/
:meth:`Domain.job_abort`; ``virsh edit`` → :meth:`Domain.editing` (the full ``INACTIVE | SECURE`` definition, edited through
:class:`~.domain_xml.DomainDocument`, saved back); ``virsh blockresize/blockcopy/blockjob`` → ``block_*``.
"""
from __future__ import annotations

import contextlib
import enum
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import libvirt

from .backups import BACKUP_BEGIN_FLAGS, BackupSpec, DomainJob, parse_job_stats
from .domain_xml import Device, Disk, DomainDocument, NicInfo
from .errors import DomainNotFound, HypervisorError, InvalidRequest, NotFound, OperationInvalid
from .registry import Connection

if TYPE_CHECKING:
    import socket

    from .console import SerialConsole


class DomainState(enum.Enum):
    """libvirt's states with virsh's words for them."""

    NOSTATE = ("nostate", "no state")
    RUNNING = ("running", "running")
    BLOCKED = ("blocked", "idle")
    PAUSED = ("paused", "paused")
    SHUTDOWN = ("shutdown", "in shutdown")
    SHUTOFF = ("shutoff", "shut off")
    CRASHED = ("crashed", "crashed")
    PMSUSPENDED = ("pmsuspended", "pmsuspended")

    def __init__(self, slug: str, label: str) -> None:
        self.slug = slug
        self.label = label

    @classmethod
    def from_code(cls, code: int) -> DomainState:
        return _STATE_BY_CODE.get(code, cls.NOSTATE)

    @classmethod
    def from_slug(cls, slug: str) -> DomainState:
        for state in cls:
            if state.slug == slug:
                return state
        raise ValueError(slug)

    @property
    def is_active(self) -> bool:
        return self not in (DomainState.SHUTOFF, DomainState.CRASHED, DomainState.NOSTATE)


_STATE_BY_CODE = {
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.PMSUSPENDED,
}


@dataclass(frozen=True)
class DomainSummary:
    """One row of ``virsh list --all`` plus vCPUs and memory. ``ref`` is for this layer only (sizes are filled
    for a page of rows in one call through it)."""

    uuid: str
    name: str
    id: int | None
    state: DomainState
    vcpus: int | None = None
    memory_kib: int | None = None  # current (balloon) memory
    max_memory_kib: int | None = None
    ref: Any = field(default=None, compare=False, repr=False)


class DomainEntry(NamedTuple):
    """One domain as ``virsh list --all --uuid --name`` names it, without its state: what a list of thousands sorts
    and filters by. ``ref`` is for this layer only (a page's states and sizes are read through it)."""

    uuid: str
    name: str
    ref: Any

    @property
    def active(self) -> bool:
        """Whether it ran when listed (its id then; no libvirt call)."""
        return bool(self.ref.ID() >= 0)


@dataclass(frozen=True)
class DomainInfo:
    """``virsh dominfo`` parity."""

    id: int | None
    name: str
    uuid: str
    os_type: str
    state: DomainState
    vcpus: int
    cpu_time_ns: int
    max_memory_kib: int
    used_memory_kib: int
    persistent: bool
    autostart: bool
    managed_save: bool
    security_model: str
    security_doi: str
    security_label: str


@dataclass(frozen=True)
class DiskUse:
    """A domain that has a file as one of its disks."""

    domain_uuid: str
    domain_name: str
    target: str


@dataclass(frozen=True)
class DomainNics:
    """A domain and its NICs, as read for network attachments."""

    uuid: str
    name: str
    active: bool
    nics: tuple[NicInfo, ...]


@dataclass(frozen=True)
class BlockJobProgress:
    cur: int
    end: int

    @property
    def ready(self) -> bool:
        return self.end > 0 and self.cur == self.end


_STATE = libvirt.VIR_DOMAIN_STATS_STATE
_SIZES = libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_BALLOON
_SECURE_CONFIG = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
)


# ------------------------------------------------------------------------------------------------ bulk reads
def _with_sizes(row: DomainSummary, values: dict[str, int]) -> DomainSummary:
    if values.get("vcpu.current") is None or values.get("balloon.maximum") is None:
        return row
    return replace(row, vcpus=values["vcpu.current"], memory_kib=values.get("balloon.current"),
                   max_memory_kib=values["balloon.maximum"])


def domain_list(conn: Connection, *, sizes: bool = True) -> list[DomainSummary]:
    """Every domain on the host (``virsh list --all``), sorted by name, with one bulk libvirt call.

    ``sizes=False`` skips vCPUs and memory (cheaper for thousands of domains): fetch them later for the rows
    actually shown with :func:`domain_fill_sizes`, again in one call.
    """
    stats = conn.call(lambda c: c.getAllDomainStats(_STATE | (_SIZES if sizes else 0), 0))
    rows = []
    for dom, values in stats:
        state = _STATE_BY_CODE.get(values.get("state.state", 0), DomainState.NOSTATE)
        dom_id = dom.ID() if state.is_active else -1
        row = DomainSummary(uuid=dom.UUIDString(), name=dom.name(), id=dom_id if dom_id >= 0 else None, state=state,
                            ref=dom)
        rows.append(_with_sizes(row, values) if sizes else row)
    rows.sort(key=lambda r: r.name)
    return domain_fill_sizes(conn, rows) if sizes else rows


def domain_fill_sizes(conn: Connection, rows: Sequence[DomainSummary]) -> list[DomainSummary]:
    """vCPUs and memory for ``rows`` that lack them: one bulk call; drivers whose bulk stats hold only
    ``state.*`` (the test driver) fall back to one ``info()`` per row."""
    todo = [r.ref for r in rows if r.vcpus is None and r.ref is not None]
    found: dict[str, dict[str, int]] = {}
    if todo:
        found = {d.UUIDString(): v for d, v in conn.call(lambda c: c.domainListGetStats(todo, _SIZES, 0))}
    out = []
    for row in rows:
        if row.vcpus is None and row.uuid in found:
            row = _with_sizes(row, found[row.uuid])
        out.append(_info_sizes(conn, row))
    return out


def _info_sizes(conn: Connection, row: DomainSummary) -> DomainSummary:
    """``row`` with the sizes ``info()`` tells, when the bulk stats did not carry them (the test driver)."""
    if row.vcpus is not None or row.ref is None:
        return row
    _state, maximum, current, vcpus, _cpu = conn.run(row.ref.info)
    return replace(row, vcpus=vcpus, memory_kib=current, max_memory_kib=maximum)


# ``listAllDomains`` filters of the states it can tell apart itself; any other state is one of its "other".
_LIST_BY_STATE = {
    DomainState.RUNNING: libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING,
    DomainState.PAUSED: libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED,
    DomainState.SHUTOFF: libvirt.VIR_CONNECT_LIST_DOMAINS_SHUTOFF,
}


def domain_entries(conn: Connection, *, state: DomainState | None = None) -> list[DomainEntry]:
    """Every domain on the host, or those in ``state``, unsorted, without reading their states: one
    ``listAllDomains`` (about half the time of the bulk stats call for thousands of domains). A state libvirt's
    filter does not tell apart (idle, in shutdown, crashed...) takes one bulk stats call more, of its "other"
    domains only. Read the states and sizes of the rows shown with :func:`domain_summaries`."""
    flags = 0 if state is None else _LIST_BY_STATE.get(state, libvirt.VIR_CONNECT_LIST_DOMAINS_OTHER)
    doms = conn.call(lambda c: c.listAllDomains(flags))
    if state is not None and state not in _LIST_BY_STATE and doms:
        doms = [d for d, values in conn.call(lambda c: c.domainListGetStats(doms, _STATE, 0))
                if DomainState.from_code(values.get("state.state", 0)) is state]
    return [DomainEntry(d.UUIDString(), d.name(), d) for d in doms]


def domain_summaries(conn: Connection, entries: Sequence[DomainEntry]) -> list[DomainSummary]:
    """State, vCPUs and memory of ``entries`` (the page of a list), in their order: one bulk call (drivers whose
    bulk stats hold only ``state.*``, the test driver, add one ``info()`` per entry). Entries whose domain is gone
    meanwhile are left out."""
    if not entries:
        return []
    stats = conn.call(lambda c: c.domainListGetStats([e.ref for e in entries], _STATE | _SIZES, 0))
    found = {d.UUIDString(): values for d, values in stats}
    rows = []
    for entry in entries:
        values = found.get(entry.uuid)
        if values is None:
            continue
        state = DomainState.from_code(values.get("state.state", 0))
        dom_id = entry.ref.ID() if state.is_active else -1
        row = DomainSummary(uuid=entry.uuid, name=entry.name, id=dom_id if dom_id >= 0 else None, state=state,
                            ref=entry.ref)
        rows.append(_info_sizes(conn, _with_sizes(row, values)))
    return rows


def domain_lookup(conn: Connection, uuid: str) -> Domain:
    try:
        dom = conn.call(lambda c: c.lookupByUUIDString(uuid))
    except DomainNotFound:
        raise DomainNotFound(f"No virtual machine with UUID {uuid} on {conn.uri}.") from None
    return Domain(conn, dom)


def domain_lookup_by_name(conn: Connection, name: str) -> Domain:
    try:
        dom = conn.call(lambda c: c.lookupByName(name))
    except DomainNotFound:
        raise DomainNotFound(f"No virtual machine named {name!r} on {conn.uri}.") from None
    return Domain(conn, dom)


def domain_exists(conn: Connection, name: str) -> bool:
    try:
        domain_lookup_by_name(conn, name)
    except DomainNotFound:
        return False
    return True


def domain_define(conn: Connection, doc: DomainDocument) -> Domain:
    """``virsh define``: a new persistent domain from a document (checked first)."""
    doc.validate()
    xml = doc.to_xml()
    return Domain(conn, conn.call(lambda c: c.defineXML(xml)))


def domain_disk_users(conn: Connection) -> dict[str, list[DiskUse]]:
    """Which domains use which file, for every domain on the host, in ONE bulk call (block stats carry each
    disk's path, for shut-off domains too)."""
    stats = conn.call(lambda c: c.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_BLOCK, 0))
    users: dict[str, list[DiskUse]] = {}
    for dom, values in stats:
        uuid, name = dom.UUIDString(), dom.name()
        for i in range(int(values.get("block.count", 0))):
            path = values.get(f"block.{i}.path")
            if path:
                users.setdefault(path, []).append(DiskUse(uuid, name, values.get(f"block.{i}.name", "")))
    return users


def domain_nics_all(conn: Connection) -> list[DomainNics]:
    """Every domain's NICs (live XML for running ones): one bulk list, then one XML read per domain —
    libvirt has no bulk call for domain XML. Used for "which VMs use this network" and MAC uniqueness."""
    doms = conn.call(lambda c: c.listAllDomains(0))
    active = {d.UUIDString() for d in conn.call(lambda c: c.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))}
    rows = []
    for dom in doms:
        try:
            xml = conn.run(functools.partial(dom.XMLDesc, 0))
        except NotFound:
            continue  # undefined between the two calls
        uuid = dom.UUIDString()
        nics = tuple(n.info() for n in DomainDocument.from_xml(xml).interfaces)
        rows.append(DomainNics(uuid=uuid, name=dom.name(), active=uuid in active, nics=nics))
    rows.sort(key=lambda r: r.name)
    return rows


# ------------------------------------------------------------------------------------------------ the handle
class Domain:
    """A handle on one domain. Each method is one libvirt call unless it says otherwise."""

    def __init__(self, conn: Connection, dom: libvirt.virDomain) -> None:
        self.conn = conn
        self._dom = dom
        self.uuid: str = dom.UUIDString()
        self.name: str = dom.name()

    def __repr__(self) -> str:
        return f"<Domain {self.name} {self.uuid} on {self.conn.uri}>"

    def _run(self, fn: Callable[[libvirt.virDomain], Any]) -> Any:
        return self.conn.run(lambda: fn(self._dom))

    # -- reading --------------------------------------------------------------------------------------
    def state(self) -> DomainState:
        code, _reason = self._run(lambda d: d.state())
        return DomainState.from_code(code)

    def is_persistent(self) -> bool:
        return bool(self._run(lambda d: d.isPersistent()))

    def xml(self, *, inactive: bool = False) -> str:
        """The XML as ``virsh dumpxml [--inactive]`` prints it: secrets (a VNC password) left out."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return str(self._run(lambda d: d.XMLDesc(flags)))

    def document(self, *, inactive: bool = False) -> DomainDocument:
        """The current (or, ``inactive``, the next boot's) XML as a document, for reading. Edits go through
        :meth:`definition`, which includes the secrets."""
        return DomainDocument.from_xml(self.xml(inactive=inactive))

    def definition(self) -> DomainDocument:
        """The persistent definition in full — ``INACTIVE | SECURE``, so a VNC password or other secret is in
        it and survives a redefine. Refused for a transient domain (it has no definition to change)."""
        if not self.is_persistent():
            raise InvalidRequest(f"{self.name} is transient: it has no definition to change.")
        return DomainDocument.from_xml(str(self._run(lambda d: d.XMLDesc(_SECURE_CONFIG))))

    def redefine(self, doc: DomainDocument) -> None:
        """Save ``doc`` (read with :meth:`definition` and edited) as this domain's definition; a running guest
        gets it at its next boot."""
        if (doc.uuid or "").lower() != self.uuid.lower():
            raise InvalidRequest("A definition can only replace the domain it was read from (the UUIDs differ).")
        doc.validate()
        xml = doc.to_xml()
        self.conn.call(lambda c: c.defineXML(xml))

    @contextlib.contextmanager
    def editing(self) -> Iterator[DomainDocument]:
        """``with dom.editing() as doc: ...`` — edit the full definition; saved when the block ends without an
        error (nothing is saved otherwise)."""
        doc = self.definition()
        yield doc
        self.redefine(doc)

    def info(self) -> DomainInfo:
        """Everything ``virsh dominfo`` prints (several calls, like virsh makes)."""
        state, max_mem, used_mem, vcpus, cpu_time = self._run(lambda d: d.info())
        dom_id = self._dom.ID()
        persistent = self.is_persistent()
        try:
            managed = bool(self._run(lambda d: d.hasManagedSaveImage(0)))
        except InvalidRequest:
            managed = False
        model, doi = self.conn.call(lambda c: c.getSecurityModel())
        label = ""
        if model:
            try:
                label = self._run(lambda d: d.securityLabel())[0] or ""
            except (InvalidRequest, OperationInvalid):
                label = ""
        return DomainInfo(
            id=dom_id if dom_id >= 0 else None, name=self.name, uuid=self.uuid, os_type=self._run(lambda d: d.OSType()),
            state=DomainState.from_code(state), vcpus=vcpus, cpu_time_ns=cpu_time, max_memory_kib=max_mem,
            used_memory_kib=used_mem, persistent=persistent,
            autostart=bool(self._run(lambda d: d.autostart())) if persistent else False, managed_save=managed,
            security_model=model or "none", security_doi=doi or "0", security_label=label,
        )

    def interface_addresses(self, *, agent: bool = False) -> dict[str, tuple[str, ...]]:
        """IPv4/IPv6 addresses by MAC from the networks' DHCP leases, and from the guest agent when ``agent``."""
        sources = [libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE]
        if agent:
            sources.append(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT)
        found: dict[str, list[str]] = {}
        for source in sources:
            try:
                result: dict[str, dict[str, Any]] = self._run(functools.partial(_addresses, source=source))
            except HypervisorError:
                continue  # no lease source (not running, no network of libvirt's) or no agent: no addresses
            for info in (result or {}).values():
                mac = str(info.get("hwaddr") or "").lower()
                for addr in info.get("addrs") or []:
                    text = f"{addr.get('addr')}/{addr.get('prefix')}"
                    if mac and text not in found.setdefault(mac, []):
                        found[mac].append(text)
        return {mac: tuple(v) for mac, v in found.items()}

    def screenshot_png(self) -> bytes:
        """A PNG of the guest's screen (QEMU returns PNG)."""
        stream = self.conn.call(lambda c: c.newStream(0))
        chunks: list[bytes] = []
        self._run(lambda d: d.screenshot(stream, 0, 0))

        def sink(_stream: libvirt.virStream, data: bytes, acc: list[bytes]) -> int:
            acc.append(data)
            return len(data)

        self.conn.run(lambda: stream.recvAll(sink, chunks))
        self.conn.run(stream.finish)
        return b"".join(chunks)

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._run(lambda d: d.create())

    def shutdown(self) -> None:
        """Ask the guest to power off (ACPI). The guest decides; the state changes when it has."""
        self._run(lambda d: d.shutdown())

    def reboot(self) -> None:
        self._run(lambda d: d.reboot(0))

    def destroy(self) -> None:
        """Pull the plug (``virsh destroy``)."""
        self._run(lambda d: d.destroy())

    def suspend(self) -> None:
        """Pause a running guest (``virsh suspend``): its vCPUs stop, its disks stay still."""
        self._run(lambda d: d.suspend())

    def resume(self) -> None:
        self._run(lambda d: d.resume())

    def undefine(self) -> None:
        """Remove the definition with its NVRAM, managed-save image and snapshot/checkpoint metadata."""
        try:
            self._run(lambda d: d.undefineFlags(_UNDEFINE_FLAGS))
        except InvalidRequest:
            # Drivers without NVRAM or checkpoint support refuse those flags; nothing of that kind exists then.
            self._run(lambda d: d.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                                | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA))

    def set_autostart(self, enabled: bool) -> None:
        self._run(lambda d: d.setAutostart(1 if enabled else 0))

    # -- devices --------------------------------------------------------------------------------------
    def _device_flags(self, live: bool | None) -> int:
        """Change the persistent config, and the running guest too when it runs (``live=None``: decide)."""
        if live is None:
            live = self.state().is_active
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if self.is_persistent() else 0
        if live:
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def attach(self, device: Device, *, live: bool | None = None) -> None:
        """Add a device (``virsh attach-device``): to the definition, and hot-plugged when the guest runs."""
        xml, flags = device.to_xml(), self._device_flags(live)
        self._run(lambda d: d.attachDeviceFlags(xml, flags))

    def detach(self, device: Device, *, live: bool | None = None) -> None:
        """Remove a device (``virsh detach-device``); a running guest must agree to release it."""
        xml, flags = device.to_xml(), self._device_flags(live)
        self._run(lambda d: d.detachDeviceFlags(xml, flags))

    def update(self, device: Device, *, live: bool | None = None) -> None:
        """Change a device in place (``virsh update-device``: CD-ROM media, a NIC's link state...)."""
        xml, flags = device.to_xml(), self._device_flags(live)
        self._run(lambda d: d.updateDeviceFlags(xml, flags))

    # -- block jobs -----------------------------------------------------------------------------------
    def block_resize(self, target: str, capacity: int) -> None:
        """Grow the disk ``target`` of a RUNNING domain to ``capacity`` bytes (``virsh blockresize``): QEMU resizes
        the image it holds open and tells the guest."""
        self._run(lambda d: d.blockResize(target, capacity, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES))

    def block_copy_start(self, target: str, dest_path: str, dest_format: str) -> None:
        """Start copying the disk ``target`` of a RUNNING domain into an existing file (``virsh blockcopy
        --reuse-external``). QEMU holds the source open, so this is the only way to copy it while the guest
        exists."""
        disk_xml = Disk.destination(dest_path, dest_format).to_xml()
        # TRANSIENT_JOB: a persistent domain may copy when the job need not survive a libvirtd restart (ours need not).
        flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
        self._run(lambda d: d.blockCopy(target, disk_xml, None, flags))

    def block_job_progress(self, target: str) -> BlockJobProgress | None:
        """Bytes done and to do of the block job on ``target``; None when none runs."""
        info = self._run(lambda d: d.blockJobInfo(target, 0))
        if not info:
            return None
        return BlockJobProgress(cur=int(info.get("cur", 0)), end=int(info.get("end", 0)))

    def block_job_abort(self, target: str) -> None:
        """End the block job on ``target`` without switching the guest to the copy. A copy job that was ready
        leaves the destination as a complete point-in-time copy; one that was not leaves it incomplete."""
        self._run(lambda d: d.blockJobAbort(target, 0))

    # -- backups and domain jobs ------------------------------------------------------------------------
    def backup_begin(self, spec: BackupSpec) -> None:
        """Start a push-mode backup of a RUNNING domain (``virsh backup-begin``) into the existing target files of
        ``spec``; the guest keeps running. Follow it with :meth:`job`, stop it with :meth:`job_abort`."""
        xml = spec.to_xml()
        self._run(lambda d: d.backupBegin(xml, None, BACKUP_BEGIN_FLAGS))

    def job_stats(self, flags: int = 0) -> dict[str, Any]:
        """libvirt's typed statistics of the domain's job (``virsh domjobinfo [--completed]``), as they come."""
        stats: dict[str, Any] = self._run(lambda d: d.jobStats(flags))
        return stats

    def job(self) -> DomainJob | None:
        """The domain's running job (``virsh domjobinfo``): bytes processed of the total; None when none runs."""
        return parse_job_stats(self.job_stats())

    def job_completed(self) -> DomainJob | None:
        """How the domain's last job ended (``virsh domjobinfo --completed``); None when libvirt kept no record."""
        return parse_job_stats(self._run(lambda d: d.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)))

    def job_abort(self) -> None:
        """Stop the domain's running job (``virsh domjobabort``): a backup's targets are left incomplete."""
        self._run(lambda d: d.abortJob())

    # -- consoles -------------------------------------------------------------------------------------
    def open_vnc_socket(self, *, timeout: float = 5.0) -> socket.socket:
        """A connected socket speaking RFB to the guest's VNC display (see :mod:`.console`)."""
        from .console import open_vnc_socket

        return open_vnc_socket(self, timeout=timeout)

    def open_serial_console(self, on_data: Callable[[bytes], None], on_close: Callable[[str], None], *,
                            force: bool = False) -> SerialConsole:
        """The guest's serial console as a non-blocking stream (see :class:`.console.SerialConsole`); ``force``
        ends a stream open elsewhere."""
        from .console import SerialConsole

        return SerialConsole(self, on_data, on_close, force=force)

    @property
    def raw(self) -> libvirt.virDomain:
        """The underlying virDomain, for other modules of this layer only (streams, events, consoles)."""
        return self._dom


def _addresses(dom: libvirt.virDomain, *, source: int) -> Any:
    return dom.interfaceAddresses(source, 0)
