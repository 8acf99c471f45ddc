"""Install media (ISO) helpers: a directory pool that is created on demand, world-readable media volumes, and
the ISO 9660 check of a file's first bytes.
Uploads in pieces use ``Volume.upload(chunks, length=, offset=)`` (``virsh vol-upload --offset --length``)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from .errors import PoolNotFound
from .registry import Connection
from .storage import Pool, PoolSpec, Volume, VolumeSpec, pool_define, pool_lookup


def ensure_dir_pool(conn: Connection, name: str, path: str) -> Pool:
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


def create_media_volume(pool: Pool, name: str, capacity: int) -> Volume:
    """An empty raw volume for install media, readable by everyone (mode 0644): guests open shared media with
    ``<seclabel model='dac' relabel='no'/>``, so libvirt never chowns it to one guest."""
    root = ET.fromstring(VolumeSpec(name=name, capacity=capacity, format="raw").to_xml())
    target = root.find("target")
    assert target is not None
    ET.SubElement(ET.SubElement(target, "permissions"), "mode").text = "0644"
    xml = ET.tostring(root, encoding="unicode")
    pool.volume_path(name)
    return Volume(pool.conn, pool.conn.run(lambda: pool.raw.createXML(xml, 0)))


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
