"""Storage pools and volumes: typed specs that turn into pool/volume XML and back, handles with verbs, bulk
listings, full and linked volume clones, online block resize and streamed download/upload through virStream.

``virsh pool-list --all --details`` → :func:`list_pools`; ``virsh vol-list --details`` → :meth:`Pool.volumes`;
``qemu-img create`` → :meth:`Pool.create_volume`; ``qemu-img resize`` → :meth:`Volume.resize` (offline) and
:func:`block_resize` (a running guest's disk); ``virsh vol-clone`` → :meth:`Pool.clone_volume`;
``qemu-img create -b`` → :meth:`Pool.create_overlay`; ``virsh vol-download/vol-upload`` → :meth:`Volume.download`,
:meth:`Volume.upload`.
"""
from __future__ import annotations

import enum
import os
import posixpath
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import libvirt

from .domain import Domain
from .errors import InvalidRequest, PoolNotFound, VolumeNotFound
from .names import validate_name
from .registry import Connection
from .spec import DiskSpec, _attr, _render_disk, _text  # the spec module's XML helpers, shared in this layer

VOLUME_FORMATS = ("qcow2", "raw")
STREAM_CHUNK = 1024 * 1024  # bytes per virStream recv/send


def validate_volume_name(name: str) -> str:
    """A volume name is a file name inside its pool: the name rule, and never '..' anywhere in it."""
    validate_name(name, what="volume name")
    if ".." in name:
        raise InvalidRequest(f"Invalid volume name {name!r}: it may not contain '..'.")
    return name


def path_inside(directory: str, name: str) -> str:
    """``directory/name``, refusing any name that would leave ``directory``."""
    base = posixpath.normpath(directory)
    path = posixpath.normpath(posixpath.join(base, name))
    if posixpath.dirname(path) != base:
        raise InvalidRequest(f"{name!r} would leave the pool's folder {base}.")
    return path


# ------------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class VolumeSpec:
    """A volume as ``qemu-img create -f FORMAT [-b BACKING -F BACKING_FORMAT] NAME SIZE`` describes it."""

    name: str
    capacity: int  # virtual size in bytes
    format: str = "qcow2"
    allocation: int = 0  # bytes allocated up front (0 = sparse)
    backing_path: str | None = None
    backing_format: str | None = None
    path: str | None = None  # where libvirt put it (read back from XML; ignored when rendering)
    compat: str | None = "1.1"  # qcow2 version: 1.1 (qcow2 v3); libvirt would otherwise pick the legacy 0.10
    physical: int = 0  # the file's length in bytes (read back from XML; what a download sends)

    def validate(self) -> None:
        validate_volume_name(self.name)
        if self.format not in VOLUME_FORMATS:
            raise InvalidRequest(f"Unknown format {self.format!r}: use {' or '.join(VOLUME_FORMATS)}.")
        if self.capacity <= 0:
            raise InvalidRequest("A volume needs a size above zero.")
        if not 0 <= self.allocation <= self.capacity:
            raise InvalidRequest("Allocation must be between zero and the volume's size.")
        if self.backing_path is not None:
            if self.format != "qcow2":
                raise InvalidRequest("Only a qcow2 volume can sit on a backing file.")
            if not posixpath.isabs(self.backing_path):
                raise InvalidRequest("A backing file must be an absolute path.")

    def to_xml(self) -> str:
        self.validate()
        root = ET.Element("volume", type="file")
        ET.SubElement(root, "name").text = self.name
        ET.SubElement(root, "capacity", unit="bytes").text = str(self.capacity)
        ET.SubElement(root, "allocation", unit="bytes").text = str(self.allocation)
        target = ET.SubElement(root, "target")
        ET.SubElement(target, "format", type=self.format)
        if self.format == "qcow2" and self.compat:
            ET.SubElement(target, "compat").text = self.compat
        if self.backing_path:
            backing = ET.SubElement(root, "backingStore")
            ET.SubElement(backing, "path").text = self.backing_path
            ET.SubElement(backing, "format", type=self.backing_format or "qcow2")
        ET.indent(root)
        return ET.tostring(root, encoding="unicode")

    @classmethod
    def from_xml(cls, xml: str) -> VolumeSpec:
        root = ET.fromstring(xml)
        backing = root.find("backingStore")
        backing_path = _text(backing, "path") if backing is not None else ""
        fmt = _attr(root, "target/format", "type") or "raw"
        return cls(
            name=_text(root, "name"),
            capacity=_bytes(root.find("capacity")),
            allocation=_bytes(root.find("allocation")),
            physical=_bytes(root.find("physical")),
            format=fmt,
            backing_path=backing_path or None,
            backing_format=(_attr(backing, "format", "type") if backing is not None and backing_path else None),
            path=_text(root, "target/path") or None,
            # only qcow2 has versions: other formats keep the field's default so specs compare equal
            compat=_text(root, "target/compat") or (None if fmt == "qcow2" else VolumeSpec.compat),
        )


@dataclass(frozen=True)
class PoolSpec:
    """A directory pool (``virsh pool-define-as NAME dir --target PATH``)."""

    name: str
    target_path: str
    type: str = "dir"
    uuid: str | None = None
    capacity: int = 0  # read back from XML
    allocation: int = 0
    available: int = 0

    def validate(self) -> None:
        validate_name(self.name, what="pool name")
        if self.type != "dir":
            raise InvalidRequest("Only directory pools can be defined here.")
        path = self.target_path
        if not path.startswith("/") or posixpath.normpath(path) != path or "/../" in f"{path}/":
            raise InvalidRequest(f"The pool folder must be a clean absolute path, not {path!r}.")
        if any(ch in path for ch in "\0\n\r\t<>&'\"") or path == "/":
            raise InvalidRequest(f"The pool folder {path!r} contains characters a pool folder may not hold.")

    def to_xml(self) -> str:
        self.validate()
        root = ET.Element("pool", type=self.type)
        ET.SubElement(root, "name").text = self.name
        if self.uuid:
            ET.SubElement(root, "uuid").text = self.uuid
        target = ET.SubElement(root, "target")
        ET.SubElement(target, "path").text = self.target_path
        ET.indent(root)
        return ET.tostring(root, encoding="unicode")

    @classmethod
    def from_xml(cls, xml: str) -> PoolSpec:
        root = ET.fromstring(xml)
        return cls(
            name=_text(root, "name"),
            type=root.get("type", "dir"),
            uuid=_text(root, "uuid") or None,
            target_path=_text(root, "target/path"),
            capacity=_bytes(root.find("capacity")),
            allocation=_bytes(root.find("allocation")),
            available=_bytes(root.find("available")),
        )


def disk_xml(disk: DiskSpec) -> str:
    """One ``<disk>`` element for attach/detach/update, rendered exactly as the domain spec renders disks."""
    holder = ET.Element("devices")
    _render_disk(holder, disk)
    return ET.tostring(holder[0], encoding="unicode")


# ------------------------------------------------------------------------------------------------- facts
class PoolState(enum.Enum):
    INACTIVE = ("inactive", "inactive")
    BUILDING = ("building", "building")
    RUNNING = ("running", "running")
    DEGRADED = ("degraded", "degraded")
    INACCESSIBLE = ("inaccessible", "inaccessible")

    def __init__(self, slug: str, label: str) -> None:
        self.slug = slug
        self.label = label

    @classmethod
    def from_code(cls, code: int) -> PoolState:
        return {
            libvirt.VIR_STORAGE_POOL_BUILDING: cls.BUILDING,
            libvirt.VIR_STORAGE_POOL_RUNNING: cls.RUNNING,
            libvirt.VIR_STORAGE_POOL_DEGRADED: cls.DEGRADED,
            libvirt.VIR_STORAGE_POOL_INACCESSIBLE: cls.INACCESSIBLE,
        }.get(code, cls.INACTIVE)


@dataclass(frozen=True)
class PoolInfo:
    """One row of ``virsh pool-list --all --details``, plus the pool's folder."""

    name: str
    uuid: str
    type: str
    state: PoolState
    persistent: bool
    autostart: bool
    capacity: int
    allocation: int
    available: int
    target_path: str

    @property
    def active(self) -> bool:
        return self.state in (PoolState.RUNNING, PoolState.DEGRADED)


@dataclass(frozen=True)
class VolumeInfo:
    """One row of ``virsh vol-list --details`` with the format and backing file ``qemu-img info`` shows."""

    pool: str
    name: str
    path: str
    format: str
    capacity: int
    allocation: int
    backing_path: str | None = None
    physical: int = 0  # the file's length (a download's size)


@dataclass(frozen=True)
class DiskUse:
    domain_uuid: str
    domain_name: str
    target: str


# ------------------------------------------------------------------------------------------------- handles
class Volume:
    """A handle on one storage volume."""

    def __init__(self, conn: Connection, vol: libvirt.virStorageVol, *, path: str | None = None,
                 name: str | None = None) -> None:
        self.conn = conn
        self._vol = vol
        self.path: str = path if path is not None else vol.path()
        self.name: str = name if name is not None else vol.name()

    def __repr__(self) -> str:
        return f"<Volume {self.path} on {self.conn.uri}>"

    def xml(self) -> str:
        return str(self.conn.run(lambda: self._vol.XMLDesc(0)))

    def spec(self) -> VolumeSpec:
        return VolumeSpec.from_xml(self.xml())

    def info(self, pool: str = "") -> VolumeInfo:
        return _volume_info(pool or self.pool_name(), self.spec(), self.path)

    def pool_name(self) -> str:
        return str(self.conn.run(lambda: self._vol.storagePoolLookupByVolume().name()))

    def delete(self) -> None:
        self.conn.run(lambda: self._vol.delete(0))

    def resize(self, capacity: int) -> None:
        """Grow the volume to ``capacity`` bytes (``qemu-img resize``); libvirt refuses to shrink without the
        SHRINK flag, which is never passed."""
        self.conn.run(lambda: self._vol.resize(capacity, 0))

    def download(self, *, chunk: int = STREAM_CHUNK) -> Iterator[bytes]:
        """The volume's bytes as it sits on disk (a qcow2 file stays qcow2), streamed; never whole in memory.

        Closing the iterator early aborts the stream.
        """
        stream = self.conn.call(lambda c: c.newStream(0))
        self.conn.run(lambda: self._vol.download(stream, 0, 0, 0))
        finished = False
        try:
            while True:
                data = self.conn.run(lambda: stream.recv(chunk))
                if not data:
                    break
                if isinstance(data, int):  # pragma: no cover - only non-blocking streams return -2
                    continue
                yield data
            self.conn.run(stream.finish)
            finished = True
        finally:
            if not finished:
                try:
                    stream.abort()
                except libvirt.libvirtError:
                    pass

    def upload(self, chunks: Iterable[bytes], *, length: int, offset: int = 0) -> int:
        """Write ``chunks`` (``length`` bytes in all) into the volume at ``offset``; returns the bytes sent.

        Streamed (one chunk held at a time). Any failure, including the source raising, aborts the stream, so
        libvirt stops writing.
        """
        if offset < 0 or length <= 0:
            raise InvalidRequest("An upload needs an offset of zero or more and a length above zero.")
        stream = self.conn.call(lambda c: c.newStream(0))
        self.conn.run(lambda: self._vol.upload(stream, offset, length, 0))
        sent = 0
        try:
            for data in chunks:
                if not data:
                    continue
                if sent + len(data) > length:
                    raise InvalidRequest(f"More data than announced ({length} bytes).")
                view = memoryview(data)
                while view:
                    piece = bytes(view[:STREAM_CHUNK])
                    n = self.conn.run(lambda: stream.send(piece))  # noqa: B023 - called at once, in this iteration
                    view = view[n:]
                    sent += n
            if sent != length:
                raise InvalidRequest(f"The upload ended after {sent} of {length} bytes.")
            self.conn.run(stream.finish)
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise
        return sent

    @property
    def raw(self) -> libvirt.virStorageVol:
        return self._vol


class Pool:
    """A handle on one storage pool. Each method is one libvirt call unless it says otherwise."""

    def __init__(self, conn: Connection, pool: libvirt.virStoragePool) -> None:
        self.conn = conn
        self._pool = pool
        self.name: str = pool.name()
        self.uuid: str = pool.UUIDString()

    def __repr__(self) -> str:
        return f"<Pool {self.name} on {self.conn.uri}>"

    # -- reading -------------------------------------------------------------------------------------
    def xml(self, *, inactive: bool = False) -> str:
        flags = libvirt.VIR_STORAGE_XML_INACTIVE if inactive else 0
        return str(self.conn.run(lambda: self._pool.XMLDesc(flags)))

    def spec(self) -> PoolSpec:
        return PoolSpec.from_xml(self.xml())

    def info(self) -> PoolInfo:
        """Everything ``virsh pool-info`` shows (three calls: state+sizes, XML, autostart/persistence)."""
        return _pool_info(self.conn, self._pool)

    def is_active(self) -> bool:
        return bool(self.conn.run(self._pool.isActive))

    def volumes(self) -> list[VolumeInfo]:
        """Every volume (``virsh vol-list --details``): one listing call plus one XML read per volume."""
        vols = self.conn.run(lambda: self._pool.listAllVolumes(0))
        rows = []
        for vol in vols:
            xml = self.conn.run(lambda v=vol: v.XMLDesc(0))  # type: ignore[misc]
            spec = VolumeSpec.from_xml(xml)
            rows.append(_volume_info(self.name, spec, spec.path or ""))
        rows.sort(key=lambda r: r.name)
        return rows

    def volume(self, name: str) -> Volume:
        validate_volume_name(name)
        try:
            vol = self.conn.run(lambda: self._pool.storageVolLookupByName(name))
        except VolumeNotFound:
            raise VolumeNotFound(f"No volume {name!r} in pool {self.name}.") from None
        return Volume(self.conn, vol, name=name)

    def has_volume(self, name: str) -> bool:
        """Whether the pool holds a volume ``name`` (a refused name raises InvalidRequest, as :meth:`volume`)."""
        try:
            self.volume(name)
        except VolumeNotFound:
            return False
        return True

    def volume_path(self, name: str) -> str:
        """Where a volume of this name would live: refuses names that leave the pool's folder."""
        validate_volume_name(name)
        return path_inside(self.spec().target_path, name)

    # -- verbs ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self.conn.run(lambda: self._pool.create(0))

    def stop(self) -> None:
        """``virsh pool-destroy``: deactivate; the folder and its files stay."""
        self.conn.run(self._pool.destroy)

    def refresh(self) -> None:
        self.conn.run(lambda: self._pool.refresh(0))

    def build(self) -> None:
        """Create the pool's folder when missing (``virsh pool-build``)."""
        self.conn.run(lambda: self._pool.build(0))

    def undefine(self) -> None:
        self.conn.run(self._pool.undefine)

    def delete_folder(self) -> None:
        """Remove the (empty) folder of an inactive pool (``virsh pool-delete``)."""
        self.conn.run(lambda: self._pool.delete(0))

    def set_autostart(self, enabled: bool) -> None:
        self.conn.run(lambda: self._pool.setAutostart(1 if enabled else 0))

    def create_volume(self, spec: VolumeSpec) -> Volume:
        self.volume_path(spec.name)
        xml = spec.to_xml()
        return Volume(self.conn, self.conn.run(lambda: self._pool.createXML(xml, 0)))

    def clone_volume(self, source: Volume, spec: VolumeSpec) -> Volume:
        """A full, independent copy of ``source`` (``virsh vol-clone``; libvirt runs ``qemu-img convert``).

        Blocks until the copy is done: watch :meth:`Volume.info` of the new name from another thread for progress.
        """
        self.volume_path(spec.name)
        xml = spec.to_xml()
        return Volume(self.conn, self.conn.run(lambda: self._pool.createXMLFrom(xml, source.raw, 0)))

    def create_overlay(self, source: Volume, name: str) -> Volume:
        """A linked clone: a new qcow2 that reads unchanged data from ``source`` (``qemu-img create -b``)."""
        src = source.spec()
        spec = VolumeSpec(name=name, capacity=src.capacity, format="qcow2", backing_path=source.path,
                          backing_format=src.format)
        return self.create_volume(spec)

    @property
    def raw(self) -> libvirt.virStoragePool:
        return self._pool


# ------------------------------------------------------------------------------------------------- module API
def list_pools(conn: Connection) -> list[PoolInfo]:
    """``virsh pool-list --all --details``: one listing call, then what virsh also reads per pool."""
    pools = conn.call(lambda c: c.listAllStoragePools(0))
    rows = [_pool_info(conn, p) for p in pools]
    rows.sort(key=lambda r: r.name)
    return rows


def pool_lookup(conn: Connection, name: str) -> Pool:
    validate_name(name, what="pool name")
    try:
        pool = conn.call(lambda c: c.storagePoolLookupByName(name))
    except PoolNotFound:
        raise PoolNotFound(f"No storage pool named {name!r} on {conn.uri}.") from None
    return Pool(conn, pool)


def pool_define(conn: Connection, spec: PoolSpec, *, build: bool = True, start: bool = True) -> Pool:
    """Define a pool, create its folder (``pool-build``) and start it."""
    xml = spec.to_xml()
    pool = Pool(conn, conn.call(lambda c: c.storagePoolDefineXML(xml, 0)))
    try:
        if build:
            pool.build()
        if start:
            pool.start()
    except Exception:
        pool.undefine()
        raise
    return pool


def volume_for_path(conn: Connection, path: str) -> Volume | None:
    """The storage volume a file belongs to, or None when no pool holds it."""
    try:
        vol = conn.call(lambda c: c.storageVolLookupByPath(path))
    except VolumeNotFound:
        return None
    return Volume(conn, vol, path=path, name=vol.name())


def disk_users(conn: Connection) -> dict[str, list[DiskUse]]:
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


def block_resize(dom: Domain, target: str, capacity: int) -> None:
    """Grow the disk ``target`` of a RUNNING domain to ``capacity`` bytes (``virsh blockresize``): QEMU resizes
    the image it holds open and tells the guest."""
    flags = libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES
    dom.conn.run(lambda: dom.raw.blockResize(target, capacity, flags))


def set_boot_order(dom: Domain, order: Iterable[str]) -> None:
    """Set the boot devices (``cdrom``, ``hd``, ``network``) in the persistent definition, in this order.

    Per-device ``<boot order>`` elements are removed so the ``<os><boot dev>`` list decides. Edits libvirt's own
    XML (everything else — secrets such as a VNC password too — is kept as it is); takes effect at the next boot.
    """
    devs = list(order)
    for dev in devs:
        if dev not in ("cdrom", "hd", "network"):
            raise InvalidRequest(f"Unknown boot device {dev!r}: use cdrom, hd or network.")
    if not devs or len(set(devs)) != len(devs):
        raise InvalidRequest("List each boot device at most once, and at least one.")
    root = _definition(dom)
    os_el = root.find("os")
    if os_el is None:
        raise InvalidRequest("This domain has no <os> section to set a boot order in.")
    for parent in root.iter():
        for boot in parent.findall("boot"):
            parent.remove(boot)
    position = next((i + 1 for i, el in enumerate(os_el) if el.tag in ("type", "loader", "nvram")), 1)
    for offset, dev in enumerate(devs):
        os_el.insert(position + offset, ET.Element("boot", dev=dev))
    define_xml(dom.conn, ET.tostring(root, encoding="unicode"))


def boot_order(xml: str) -> list[str]:
    """The boot order a definition says: ``<os><boot dev>`` entries, or device ``<boot order>`` sorted."""
    root = ET.fromstring(xml)
    devs = [b.get("dev", "") for b in root.findall("os/boot")]
    if devs:
        return devs
    ordered: list[tuple[int, str]] = []
    devices = root.find("devices")
    for el in devices if devices is not None else []:
        boot = el.find("boot")
        if boot is None:
            continue
        kind = "network" if el.tag == "interface" else ("cdrom" if el.get("device") == "cdrom" else "hd")
        ordered.append((int(boot.get("order", "0")), kind))
    result: list[str] = []
    for _, kind in sorted(ordered):
        if kind not in result:
            result.append(kind)
    return result


DISK_BUSES = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}
CDROM_BUSES = ("sata", "scsi", "ide", "usb")


def free_target(bus: str, taken: Iterable[str]) -> str:
    """The first free device name for ``bus``: vda, vdb... for virtio; sda... for SATA/SCSI/USB; hda... for IDE."""
    if bus not in DISK_BUSES:
        raise InvalidRequest(f"Unknown disk bus {bus!r}: use one of {', '.join(DISK_BUSES)}.")
    prefix, used = DISK_BUSES[bus], set(taken)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for name in [prefix + a for a in letters] + [prefix + a + b for a in letters for b in letters]:
        if name not in used:
            return name
    raise InvalidRequest("No free device name left on this bus.")  # pragma: no cover


def set_disk_bus(dom: Domain, target: str, bus: str) -> str:
    """Move the disk ``target`` of a SHUT-OFF domain to ``bus`` (it gets a device name of that bus, and libvirt
    assigns a new address and adds any controller it needs). Returns the new device name."""
    root = _definition(dom)
    disks = root.findall("devices/disk")
    found = next((d for d in disks if _attr(d, "target", "dev") == target), None)
    if found is None:
        raise InvalidRequest(f"This VM has no disk {target}.")
    if found.get("device") == "cdrom" and bus not in CDROM_BUSES:
        raise InvalidRequest(f"A CD-ROM drive cannot sit on the {bus} bus: use {', '.join(CDROM_BUSES)}.")
    taken = [_attr(d, "target", "dev") or "" for d in disks if d is not found]
    new = target if target[:2] == DISK_BUSES.get(bus, "")[:2] and target not in taken else free_target(bus, taken)
    tgt = found.find("target")
    assert tgt is not None
    tgt.set("dev", new)
    tgt.set("bus", bus)
    for address in found.findall("address"):
        found.remove(address)
    define_xml(dom.conn, ET.tostring(root, encoding="unicode"))
    return new


IDE_TARGETS = ("hda", "hdb", "hdc", "hdd")  # i440fx's one IDE controller: two buses of two units each


def default_cdrom_bus(machine: str | None, arch: str = "x86_64") -> str:
    """The bus ``virt-install`` gives a new CD-ROM drive: SATA on q35 (it has no IDE controller), IDE on i440fx
    (``pc``) and on x86 when no machine is named, SCSI on other architectures."""
    if machine_lacks_ide(machine):
        return "sata"
    return "ide" if arch in ("x86_64", "i686") else "scsi"


def machine_lacks_ide(machine: str | None) -> bool:
    """q35 has no IDE controller: libvirt accepts an IDE drive in the definition, but the guest then fails to
    start ("IDE controllers are unsupported for this QEMU binary or machine type")."""
    return "q35" in (machine or "").lower()


def _definition(dom: Domain) -> ET.Element:
    """The persistent definition in full (secrets such as a VNC password included, so redefining keeps them)."""
    if not dom.conn.run(dom.raw.isPersistent):
        raise InvalidRequest(f"{dom.name} is transient: it has no definition to change.")
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    return ET.fromstring(dom.conn.run(lambda: dom.raw.XMLDesc(flags)))


def add_disk_config(dom: Domain, disk: DiskSpec) -> None:
    """Add ``disk`` to the PERSISTENT definition only, like ``virt-xml --add-device`` (edit and redefine; libvirt
    assigns its address and adds any controller it needs). A running guest gets it at its next boot: libvirt
    cannot hot-plug IDE/SATA drives, nor an empty CD-ROM drive on any bus."""
    root = _definition(dom)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    disks = devices.findall("disk")
    if any(_attr(d, "target", "dev") == disk.target for d in disks):
        raise InvalidRequest(f"This VM already has a disk {disk.target}.")
    holder = ET.Element("devices")
    _render_disk(holder, disk)
    devices.insert(list(devices).index(disks[-1]) + 1 if disks else 0, holder[0])
    define_xml(dom.conn, ET.tostring(root, encoding="unicode"))


def remove_disk_config(dom: Domain, target: str) -> None:
    """Remove the disk ``target`` from the PERSISTENT definition only (a running guest keeps it until it stops)."""
    root = _definition(dom)
    devices = root.find("devices")
    found = next((d for d in (devices.findall("disk") if devices is not None else [])
                  if _attr(d, "target", "dev") == target), None)
    if devices is None or found is None:
        raise InvalidRequest(f"This VM's definition has no disk {target}.")
    devices.remove(found)
    define_xml(dom.conn, ET.tostring(root, encoding="unicode"))


def clone_domain_xml(xml: str, *, name: str, disk_sources: dict[str, str],
                     disk_formats: dict[str, str] | None = None, uuid: str | None = None) -> str:
    """The definition of a clone (``virt-clone`` parity): new name, a new UUID (``uuid``, else libvirt makes one),
    no MAC addresses
    (libvirt makes new ones), each disk whose target is in ``disk_sources`` pointed at its new file, and
    everything tied to the original's identity dropped (fixed VNC ports, NVRAM file, description)."""
    validate_name(name)
    formats = disk_formats or {}
    root = ET.fromstring(xml)
    _set_text(root, "name", name)
    for tag in ("uuid", "description", "title"):
        el = root.find(tag)
        if el is not None:
            root.remove(el)
    if uuid:
        root.insert(1, _element("uuid", uuid))
    nvram = root.find("os/nvram")
    os_el = root.find("os")
    if nvram is not None and os_el is not None:
        os_el.remove(nvram)
    for iface in root.findall("devices/interface"):
        for mac in iface.findall("mac"):
            iface.remove(mac)
        target = iface.find("target")
        if target is not None:
            iface.remove(target)
    for gfx in root.findall("devices/graphics"):
        if gfx.get("autoport") == "no" or gfx.get("port") not in (None, "-1"):
            gfx.set("autoport", "yes")
            gfx.attrib.pop("port", None)
            gfx.attrib.pop("websocket", None)
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev", "") if target is not None else ""
        if dev not in disk_sources:
            continue
        disk.set("type", "file")
        for old in disk.findall("source"):
            disk.remove(old)
        for old in disk.findall("backingStore"):
            disk.remove(old)
        src = ET.Element("source", file=disk_sources[dev])
        driver = disk.find("driver")
        disk.insert(list(disk).index(driver) + 1 if driver is not None else 0, src)
        if driver is not None and dev in formats:
            driver.set("type", formats[dev])
    return ET.tostring(root, encoding="unicode")


# ------------------------------------------------------------------------------------------------- helpers
def _element(tag: str, text: str) -> ET.Element:
    el = ET.Element(tag)
    el.text = text
    return el


def _set_text(root: ET.Element, tag: str, text: str) -> None:
    el = root.find(tag)
    if el is None:
        el = ET.SubElement(root, tag)
    el.text = text


def _pool_info(conn: Connection, pool: libvirt.virStoragePool) -> PoolInfo:
    state, capacity, allocation, available = conn.run(pool.info)
    spec = PoolSpec.from_xml(conn.run(lambda: pool.XMLDesc(0)))
    persistent = bool(conn.run(pool.isPersistent))
    return PoolInfo(
        name=spec.name, uuid=spec.uuid or "", type=spec.type, state=PoolState.from_code(state),
        persistent=persistent, autostart=bool(conn.run(pool.autostart)) if persistent else False,
        capacity=capacity, allocation=allocation, available=available, target_path=spec.target_path,
    )


def _volume_info(pool: str, spec: VolumeSpec, path: str) -> VolumeInfo:
    return VolumeInfo(pool=pool, name=spec.name, path=path, format=spec.format, capacity=spec.capacity,
                      allocation=spec.allocation, backing_path=spec.backing_path, physical=spec.physical)


_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
          "g": 1024**3, "gib": 1024**3, "gb": 1000**3, "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
          "p": 1024**5, "pib": 1024**5, "pb": 1000**5}


def _bytes(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        return 0
    return int(el.text or 0) * _UNITS.get(el.get("unit", "bytes").lower(), 1)


def file_name_for(base: str, ext: str, taken: Iterable[str]) -> str:
    """``base.ext``, else ``base-1.ext``, ``base-2.ext``... whichever is free (virt-clone's naming)."""
    used = set(taken)
    candidate = f"{base}.{ext}" if ext else base
    n = 1
    while candidate in used:
        candidate = f"{base}-{n}.{ext}" if ext else f"{base}-{n}"
        n += 1
    return candidate


def split_ext(name: str) -> tuple[str, str]:
    stem, ext = os.path.splitext(name)
    return (stem, ext[1:]) if ext else (name, "")


def define_xml(conn: Connection, xml: str) -> Domain:
    """Define a domain from XML this layer built (a clone's definition)."""
    return Domain(conn, conn.call(lambda c: c.defineXML(xml)))


def suspend(dom: Domain) -> None:
    """Pause a running guest (``virsh suspend``): its vCPUs stop, its disks stay still."""
    dom.conn.run(dom.raw.suspend)


def resume(dom: Domain) -> None:
    dom.conn.run(dom.raw.resume)


@dataclass(frozen=True)
class BlockJobProgress:
    cur: int
    end: int

    @property
    def ready(self) -> bool:
        return self.end > 0 and self.cur == self.end


def block_copy_start(dom: Domain, target: str, dest_path: str, dest_format: str) -> None:
    """Start copying the disk ``target`` of a RUNNING domain into an existing file (``virsh blockcopy --reuse-external
    --shallow=no``). QEMU holds the source open, so this is the only way to copy it while the guest exists."""
    disk = ET.Element("disk", type="file")
    ET.SubElement(disk, "driver", name="qemu", type=dest_format)
    ET.SubElement(disk, "source", file=dest_path)
    xml = ET.tostring(disk, encoding="unicode")
    # TRANSIENT_JOB: a persistent domain may copy when the job need not survive a libvirtd restart (ours need not).
    flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
    dom.conn.run(lambda: dom.raw.blockCopy(target, xml, None, flags))


def block_job_progress(dom: Domain, target: str) -> BlockJobProgress | None:
    """Bytes done and to do of the block job on ``target``; None when none runs."""
    info = dom.conn.run(lambda: dom.raw.blockJobInfo(target, 0))
    if not info:
        return None
    return BlockJobProgress(cur=int(info.get("cur", 0)), end=int(info.get("end", 0)))


def block_job_abort(dom: Domain, target: str) -> None:
    """End the block job on ``target`` without switching the guest to the copy. A copy job that was ready leaves
    the destination as a complete point-in-time copy; one that was not leaves it incomplete (delete it)."""
    dom.conn.run(lambda: dom.raw.blockJobAbort(target, 0))
