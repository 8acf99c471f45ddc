"""Domains: bulk listing, a handle with verbs, and the facts ``virsh dominfo``/``domblklist``/``vncdisplay`` show."""
from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import libvirt

from .errors import DomainNotFound, InvalidRequest, OperationInvalid
from .registry import Connection
from .spec import DomainSpec


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
    """One row of ``virsh list --all`` plus vCPUs and memory."""

    uuid: str
    name: str
    id: int | None
    state: DomainState
    vcpus: int | None = None
    memory_kib: int | None = None  # current (balloon) memory
    max_memory_kib: int | None = None
    handle: libvirt.virDomain | None = field(default=None, compare=False, repr=False)


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
class BlockDevice:
    """``virsh domblklist --details`` parity."""

    target: str
    source: str | None
    device: str  # disk, cdrom, floppy, lun
    type: str  # file, block, volume, network


@dataclass(frozen=True)
class VncDisplay:
    """Where the VNC display listens; ``listen='none'`` means only through libvirt (the portal's proxy)."""

    listen: str  # 'none', 'address', 'socket'
    address: str | None
    port: int | None

    @property
    def display(self) -> str | None:
        """``virsh vncdisplay`` output (``127.0.0.1:0``), or None when there is no TCP port."""
        if self.listen != "address" or self.port is None or self.port < 5900:
            return None
        return f"{self.address or ''}:{self.port - 5900}"


_STATE = libvirt.VIR_DOMAIN_STATS_STATE
_SIZES = libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_BALLOON


def _with_sizes(row: DomainSummary, values: dict[str, int]) -> DomainSummary:
    if values.get("vcpu.current") is None or values.get("balloon.maximum") is None:
        return row
    return replace(row, vcpus=values["vcpu.current"], memory_kib=values.get("balloon.current"),
                   max_memory_kib=values["balloon.maximum"])


def list_domains(conn: Connection, *, sizes: bool = True) -> list[DomainSummary]:
    """Every domain on the host (``virsh list --all``), sorted by name, with one bulk libvirt call.

    ``sizes=False`` skips vCPUs and memory (cheaper for thousands of domains): fetch them later for the rows
    actually shown with :func:`fill_sizes`, again in one call.
    """
    stats = conn.call(lambda c: c.getAllDomainStats(_STATE | (_SIZES if sizes else 0), 0))
    rows = []
    for dom, values in stats:
        state = _STATE_BY_CODE.get(values.get("state.state", 0), DomainState.NOSTATE)
        dom_id = dom.ID() if state.is_active else -1
        row = DomainSummary(
            uuid=dom.UUIDString(), name=dom.name(), id=dom_id if dom_id >= 0 else None, state=state, handle=dom,
        )
        rows.append(_with_sizes(row, values) if sizes else row)
    rows.sort(key=lambda r: r.name)
    return fill_sizes(conn, rows) if sizes else rows


def fill_sizes(conn: Connection, rows: Sequence[DomainSummary]) -> list[DomainSummary]:
    """vCPUs and memory for ``rows`` that lack them: one bulk call; drivers whose bulk stats hold only
    ``state.*`` (the test driver) fall back to one ``info()`` per row."""
    todo = [r.handle for r in rows if r.vcpus is None and r.handle is not None]
    found: dict[str, dict[str, int]] = {}
    if todo:
        found = {d.UUIDString(): v for d, v in conn.call(lambda c: c.domainListGetStats(todo, _SIZES, 0))}
    out = []
    for row in rows:
        if row.vcpus is None and row.uuid in found:
            row = _with_sizes(row, found[row.uuid])
        if row.vcpus is None and row.handle is not None:
            _state, maximum, current, vcpus, _cpu = conn.run(row.handle.info)
            row = replace(row, vcpus=vcpus, memory_kib=current, max_memory_kib=maximum)
        out.append(row)
    return out


def lookup(conn: Connection, uuid: str) -> Domain:
    try:
        dom = conn.call(lambda c: c.lookupByUUIDString(uuid))
    except DomainNotFound:
        raise DomainNotFound(f"No virtual machine with UUID {uuid} on {conn.uri}.") from None
    return Domain(conn, dom)


def lookup_by_name(conn: Connection, name: str) -> Domain:
    try:
        dom = conn.call(lambda c: c.lookupByName(name))
    except DomainNotFound:
        raise DomainNotFound(f"No virtual machine named {name!r} on {conn.uri}.") from None
    return Domain(conn, dom)


def define(conn: Connection, spec: DomainSpec) -> Domain:
    xml = spec.to_xml()
    return Domain(conn, conn.call(lambda c: c.defineXML(xml)))


_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
)


class Domain:
    """A handle on one domain. Each method is one libvirt call unless it says otherwise."""

    def __init__(self, conn: Connection, dom: libvirt.virDomain) -> None:
        self.conn = conn
        self._dom = dom
        self.uuid: str = dom.UUIDString()
        self.name: str = dom.name()

    def __repr__(self) -> str:
        return f"<Domain {self.name} {self.uuid} on {self.conn.uri}>"

    # -- reading --------------------------------------------------------------------------------------
    def state(self) -> DomainState:
        code, _reason = self.conn.run(self._dom.state)
        return DomainState.from_code(code)

    def xml(self, *, inactive: bool = False) -> str:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        xml: str = self.conn.run(lambda: self._dom.XMLDesc(flags))
        return xml

    def spec(self, *, inactive: bool = False) -> DomainSpec:
        return DomainSpec.from_xml(self.xml(inactive=inactive))

    def info(self) -> DomainInfo:
        """Everything ``virsh dominfo`` prints (several calls, like virsh makes)."""
        run = self.conn.run
        state, max_mem, used_mem, vcpus, cpu_time = run(self._dom.info)
        dom_id = self._dom.ID()
        persistent = bool(run(self._dom.isPersistent))
        try:
            managed = bool(run(lambda: self._dom.hasManagedSaveImage(0)))
        except InvalidRequest:
            managed = False
        model, doi = self.conn.call(lambda c: c.getSecurityModel())
        label = ""
        if model:
            try:
                label = run(self._dom.securityLabel)[0] or ""
            except (InvalidRequest, OperationInvalid):
                label = ""
        return DomainInfo(
            id=dom_id if dom_id >= 0 else None,
            name=self.name,
            uuid=self.uuid,
            os_type=run(self._dom.OSType),
            state=DomainState.from_code(state),
            vcpus=vcpus,
            cpu_time_ns=cpu_time,
            max_memory_kib=max_mem,
            used_memory_kib=used_mem,
            persistent=persistent,
            autostart=bool(run(self._dom.autostart)) if persistent else False,
            managed_save=managed,
            security_model=model or "none",
            security_doi=doi or "0",
            security_label=label,
        )

    def block_devices(self, xml: str | None = None) -> list[BlockDevice]:
        root = ET.fromstring(xml if xml is not None else self.xml())
        devices = []
        for disk in root.findall("devices/disk"):
            src = disk.find("source")
            source = None
            if src is not None:
                source = src.get("file") or src.get("dev") or src.get("name")
                if src.get("pool") and src.get("volume"):
                    source = f"{src.get('pool')}/{src.get('volume')}"
            target = disk.find("target")
            devices.append(
                BlockDevice(
                    target=target.get("dev", "") if target is not None else "",
                    source=source,
                    device=disk.get("device", "disk"),
                    type=disk.get("type", "file"),
                )
            )
        return devices

    def vnc(self, xml: str | None = None) -> VncDisplay | None:
        root = ET.fromstring(xml if xml is not None else self.xml())
        gfx = root.find("devices/graphics[@type='vnc']")
        if gfx is None:
            return None
        listen = gfx.find("listen")
        kind = listen.get("type", "address") if listen is not None else "address"
        address = (listen.get("address") if listen is not None else None) or gfx.get("listen")
        port = int(gfx.get("port", "-1"))
        return VncDisplay(listen=kind, address=address, port=port if port > 0 else None)

    # -- verbs ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.conn.run(self._dom.create)

    def shutdown(self) -> None:
        """Ask the guest to power off (ACPI). The guest decides; the state changes when it has."""
        self.conn.run(self._dom.shutdown)

    def reboot(self) -> None:
        self.conn.run(lambda: self._dom.reboot(0))

    def destroy(self) -> None:
        """Pull the plug (``virsh destroy``)."""
        self.conn.run(self._dom.destroy)

    def undefine(self) -> None:
        """Remove the definition with its NVRAM, managed-save image and snapshot/checkpoint metadata."""
        try:
            self.conn.run(lambda: self._dom.undefineFlags(_UNDEFINE_FLAGS))
        except InvalidRequest:
            # Drivers without NVRAM or checkpoint support refuse those flags; nothing of that kind exists then.
            self.conn.run(lambda: self._dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE))

    def set_autostart(self, enabled: bool) -> None:
        self.conn.run(lambda: self._dom.setAutostart(1 if enabled else 0))

    # -- devices --------------------------------------------------------------------------------------
    def _device_flags(self, live: bool | None) -> int:
        """Change the persistent config, and the running guest too when it runs (``live=None``: decide)."""
        if live is None:
            live = self.state().is_active
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if self.conn.run(self._dom.isPersistent) else 0
        if live:
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def attach_device(self, device_xml: str, *, live: bool | None = None) -> None:
        """Add a device (disk, interface...) given as XML built by a spec object (hot-plug when running)."""
        flags = self._device_flags(live)
        self.conn.run(lambda: self._dom.attachDeviceFlags(device_xml, flags))

    def detach_device(self, device_xml: str, *, live: bool | None = None) -> None:
        flags = self._device_flags(live)
        self.conn.run(lambda: self._dom.detachDeviceFlags(device_xml, flags))

    def update_device(self, device_xml: str, *, live: bool | None = None) -> None:
        """Change a device in place (CD-ROM media, interface link state...)."""
        flags = self._device_flags(live)
        self.conn.run(lambda: self._dom.updateDeviceFlags(device_xml, flags))

    def redefine(self, spec: DomainSpec) -> None:
        """Replace the persistent definition (same UUID) with ``spec``; takes effect at next boot if running."""
        xml = spec.to_xml()
        self.conn.call(lambda c: c.defineXML(xml))

    @property
    def raw(self) -> libvirt.virDomain:
        """The underlying virDomain, for other modules of the hypervisor layer only (streams, events)."""
        return self._dom

    def screenshot_png(self) -> bytes:
        """A PNG of the guest's screen (QEMU returns PNG)."""
        stream = self.conn.call(lambda c: c.newStream(0))
        chunks: list[bytes] = []
        self.conn.run(lambda: self._dom.screenshot(stream, 0, 0))

        def sink(_stream: libvirt.virStream, data: bytes, acc: list[bytes]) -> int:
            acc.append(data)
            return len(data)

        self.conn.run(lambda: stream.recvAll(sink, chunks))
        self.conn.run(stream.finish)
        return b"".join(chunks)
