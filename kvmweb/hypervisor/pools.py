"""Storage pools: a typed spec for directory pools, a handle with verbs, and the bulk listing.

``virsh pool-list --all --details`` → :func:`pool_list`; ``pool-define-as NAME dir`` + ``pool-build`` +
``pool-start`` → :func:`pool_define`; ``virsh vol-list --details`` → :meth:`Pool.volumes`; ``qemu-img create``
→ :meth:`Pool.create_volume`; ``virsh vol-clone`` → :meth:`Pool.clone_volume`; ``qemu-img create -b`` →
:meth:`Pool.create_overlay`.
"""
from __future__ import annotations

import enum
import posixpath
from dataclasses import dataclass

import libvirt
from lxml import etree

from .errors import InvalidRequest, NotFound, OperationInvalid, PoolNotFound, VolumeNotFound
from .names import validate_name
from .registry import Connection
from .units import xml_element_bytes
from .volumes import Volume, VolumeInfo, VolumeSpec, path_inside, validate_volume_name, volume_info
from .xmlnode import parse_element, serialize


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
        root = etree.Element("pool", type=self.type)
        etree.SubElement(root, "name").text = self.name
        if self.uuid:
            etree.SubElement(root, "uuid").text = self.uuid
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "path").text = self.target_path
        return serialize(root)

    @classmethod
    def from_xml(cls, xml: str) -> PoolSpec:
        root = parse_element(xml)
        return cls(
            name=(root.findtext("name") or "").strip(),
            type=root.get("type", "dir"),
            uuid=(root.findtext("uuid") or "").strip() or None,
            target_path=(root.findtext("target/path") or "").strip(),
            capacity=xml_element_bytes(root.find("capacity")),
            allocation=xml_element_bytes(root.find("allocation")),
            available=xml_element_bytes(root.find("available")),
        )


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
        """Every volume (``virsh vol-list --details``): one listing call plus one XML read per volume (a volume
        deleted between the two is left out)."""
        vols = self.conn.run(lambda: self._pool.listAllVolumes(0))
        rows = []
        for vol in vols:
            try:
                xml = self.conn.run(lambda v=vol: v.XMLDesc(0))  # type: ignore[misc]
            except VolumeNotFound:
                continue
            spec = VolumeSpec.from_xml(xml)
            rows.append(volume_info(self.name, spec, spec.path or ""))
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

    def create_media_volume(self, name: str, capacity: int) -> Volume:
        """An empty raw volume for install media, readable by everyone (mode 0644): guests open shared media with
        ``<seclabel model='dac' relabel='no'/>``, so libvirt never chowns it to one guest."""
        self.volume_path(name)
        xml = serialize(VolumeSpec(name=name, capacity=capacity, format="raw").element(mode="0644"))
        return Volume(self.conn, self.conn.run(lambda: self._pool.createXML(xml, 0)))

    def create_overlay(self, source: Volume, name: str, *, capacity: int | None = None) -> Volume:
        """A linked clone: a new qcow2 that reads unchanged data from ``source`` (``qemu-img create -b``), as large
        as ``source`` or ``capacity`` bytes when that is more (the guest sees a grown disk)."""
        src = source.spec()
        spec = VolumeSpec(name=name, capacity=max(src.capacity, capacity or 0), format="qcow2",
                          backing_path=source.path, backing_format=src.format)
        return self.create_volume(spec)

    def create_file_volume(self, name: str, data: bytes) -> Volume:
        """A raw volume holding ``data`` (a small file such as a cloud-init seed ISO), readable by its owner only
        until libvirt labels it for the guest that opens it. Deleted again if writing it fails."""
        volume = self.create_volume(VolumeSpec(name=name, capacity=len(data), format="raw"))
        try:
            volume.upload([data], length=len(data))
        except Exception:
            volume.delete()
            raise
        return volume

    @property
    def raw(self) -> libvirt.virStoragePool:
        return self._pool


def pool_list(conn: Connection) -> list[PoolInfo]:
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


def _pool_info(conn: Connection, pool: libvirt.virStoragePool) -> PoolInfo:
    state, capacity, allocation, available = conn.run(pool.info)
    spec = PoolSpec.from_xml(conn.run(lambda: pool.XMLDesc(0)))
    persistent = bool(conn.run(pool.isPersistent))
    return PoolInfo(
        name=spec.name, uuid=spec.uuid or "", type=spec.type, state=PoolState.from_code(state),
        persistent=persistent, autostart=bool(conn.run(pool.autostart)) if persistent else False,
        capacity=capacity, allocation=allocation, available=available, target_path=spec.target_path,
    )


def volume_backing_users(conn: Connection) -> dict[str, list[VolumeInfo]]:
    """backing file path → the volumes that sit on it (qcow2 overlays, linked clones), across every active pool of
    the host: one pool listing, then each pool's volumes (:meth:`Pool.volumes`)."""
    pools = conn.call(lambda c: c.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE))
    users: dict[str, list[VolumeInfo]] = {}
    for raw in pools:
        try:
            rows = Pool(conn, raw).volumes()
        except (NotFound, OperationInvalid):
            continue  # stopped or removed since the listing
        for row in rows:
            if row.backing_path:
                users.setdefault(row.backing_path, []).append(row)
    return users


def pool_ensure(conn: Connection, name: str, path: str) -> Pool:
    """The directory pool ``name`` (folder ``path``): defined, built, started and autostarted when missing."""
    try:
        pool = pool_lookup(conn, name)
    except PoolNotFound:
        pool = pool_define(conn, PoolSpec(name=name, target_path=path))
        pool.set_autostart(True)
        return pool
    if not pool.is_active():
        pool.build()
        pool.start()
    return pool
