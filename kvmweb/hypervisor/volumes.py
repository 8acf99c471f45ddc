"""Storage volumes: a typed spec that turns into volume XML and back, a handle with verbs, and streamed
download/upload through virStream.

``qemu-img create`` → ``Pool.create_volume`` (:mod:`.pools`); ``qemu-img resize`` → :meth:`Volume.resize`;
``virsh vol-download/vol-upload`` → :meth:`Volume.download`/:meth:`Volume.upload`; ``virsh vol-path``/
``vol-pool`` → :func:`volume_by_path`. Install media: :func:`looks_like_iso9660` on :func:`read_head` of a download.
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import libvirt
from lxml import etree

from .errors import InvalidRequest, VolumeNotFound
from .names import validate_name
from .registry import Connection
from .units import xml_element_bytes
from .xmlnode import Element, parse_element, serialize

VOLUME_FORMATS = ("qcow2", "raw")
STREAM_CHUNK = 256 * 1024  # bytes per virStream recv/send: the most one libvirt stream message carries


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
        return serialize(self.element())

    def element(self, *, mode: str | None = None) -> Element:
        """The ``<volume>`` element (``mode``: the new file's permissions, e.g. '0644')."""
        self.validate()
        root = etree.Element("volume", type="file")
        etree.SubElement(root, "name").text = self.name
        etree.SubElement(root, "capacity", unit="bytes").text = str(self.capacity)
        etree.SubElement(root, "allocation", unit="bytes").text = str(self.allocation)
        target = etree.SubElement(root, "target")
        etree.SubElement(target, "format", type=self.format)
        if self.format == "qcow2" and self.compat:
            etree.SubElement(target, "compat").text = self.compat
        if mode:
            etree.SubElement(etree.SubElement(target, "permissions"), "mode").text = mode
        if self.backing_path:
            backing = etree.SubElement(root, "backingStore")
            etree.SubElement(backing, "path").text = self.backing_path
            etree.SubElement(backing, "format", type=self.backing_format or "qcow2")
        return root

    @classmethod
    def from_xml(cls, xml: str) -> VolumeSpec:
        root = parse_element(xml)
        backing = root.find("backingStore")
        backing_path = (backing.findtext("path") or "").strip() if backing is not None else ""
        fmt = _attr(root, "target/format", "type") or "raw"
        return cls(
            name=_text(root, "name"),
            capacity=xml_element_bytes(root.find("capacity")),
            allocation=xml_element_bytes(root.find("allocation")),
            physical=xml_element_bytes(root.find("physical")),
            format=fmt,
            backing_path=backing_path or None,
            backing_format=(_attr(backing, "format", "type") if backing is not None and backing_path else None),
            path=_text(root, "target/path") or None,
            # only qcow2 has versions: other formats keep the field's default so specs compare equal
            compat=_text(root, "target/compat") or (None if fmt == "qcow2" else VolumeSpec.compat),
        )


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
class ImageInfo:
    """What a disk image file is, as ``qemu-img info`` (or libvirt's probe of its header) tells it."""

    format: str
    virtual_size: int  # the disk's size as a guest sees it, in bytes
    backing_path: str | None = None  # absolute
    backing_format: str | None = None


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
        return volume_info(pool or self.pool_name(), self.spec(), self.path)

    def image_info(self) -> ImageInfo:
        """What libvirt's probe of the file's header says it is (fresh after a refresh of its pool)."""
        spec = self.spec()
        return ImageInfo(format=spec.format, virtual_size=spec.capacity, backing_path=spec.backing_path,
                         backing_format=spec.backing_format)

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
                while view:  # libvirt takes bytes (no views), at most STREAM_CHUNK of them at a time
                    piece = data if len(view) == len(data) <= STREAM_CHUNK else bytes(view[:STREAM_CHUNK])
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


def volume_by_path(conn: Connection, path: str) -> Volume | None:
    """The storage volume a file belongs to, or None when no pool holds it."""
    try:
        vol = conn.call(lambda c: c.storageVolLookupByPath(path))
    except VolumeNotFound:
        return None
    return Volume(conn, vol, path=path, name=vol.name())


def volume_image_info(conn: Connection, path: str) -> ImageInfo | None:
    """What the file ``path`` is (format, virtual size, backing file) as libvirt probes its header, after a refresh
    of its pool so that the probe is fresh (a volume written since, e.g. an upload, is read again); works for remote
    hosts. None when no pool holds ``path``."""
    volume = volume_by_path(conn, path)
    if volume is None:
        return None
    conn.run(lambda: volume.raw.storagePoolLookupByVolume().refresh(0))
    return volume.image_info()


def volume_info(pool: str, spec: VolumeSpec, path: str) -> VolumeInfo:
    return VolumeInfo(pool=pool, name=spec.name, path=path, format=spec.format, capacity=spec.capacity,
                      allocation=spec.allocation, backing_path=spec.backing_path, physical=spec.physical)


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




def _text(root: Element, path: str) -> str:
    return (root.findtext(path) or "").strip()


def _attr(root: Element | None, path: str, name: str) -> str | None:
    el = root.find(path) if root is not None else None
    return el.get(name) if el is not None else None


# -- install media -------------------------------------------------------------------------------------------
ISO9660_SIGNATURE = b"CD001"
ISO9660_SIGNATURE_AT = 32769  # the primary volume descriptor is sector 16 (of 2048 bytes); its byte 1 says CD001
ISO_HEAD_BYTES = 40 * 1024  # enough to see the signature


def read_head(chunks: Iterator[bytes], size: int = ISO_HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a stream of chunks (e.g. ``Volume.download()``), which is then closed: a libvirt
    download stops there (the stream is aborted) instead of sending the whole file."""
    head = bytearray()
    try:
        for data in chunks:
            head += data
            if len(head) >= size:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return bytes(head[:size])


def looks_like_iso9660(head: bytes) -> bool:
    """Whether a file's first bytes carry the ISO 9660 signature (what an install CD/DVD image has; a hybrid
    ISO that also boots from USB has it too)."""
    return head[ISO9660_SIGNATURE_AT:ISO9660_SIGNATURE_AT + len(ISO9660_SIGNATURE)] == ISO9660_SIGNATURE


# -- disk images ---------------------------------------------------------------------------------------------
QCOW2_MAGIC = b"QFI\xfb"
QCOW2_EXTERNAL_DATA = 1 << 2  # incompatible feature bit: the guest's data lives in another file


def check_qcow2_header(head: bytes) -> list[str]:
    """What a qcow2 header (a file's first bytes) asks for that a shared library image may not have: an external
    data file (another file of the host read as the disk's data) or encryption (a secret the portal does not hold).
    Neither shows in libvirt's volume XML, so the header itself is read. Empty for anything else."""
    if head[:4] != QCOW2_MAGIC or len(head) < 80:
        return []
    version = int.from_bytes(head[4:8], "big")
    crypt_method = int.from_bytes(head[32:36], "big")
    incompatible = int.from_bytes(head[72:80], "big") if version >= 3 else 0
    refused = ["encryption"] if crypt_method else []
    if incompatible & QCOW2_EXTERNAL_DATA:
        refused.append("an external data file")
    return refused
