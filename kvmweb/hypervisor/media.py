"""Install media (ISO) helpers: a directory pool that is created on demand, and a ranged streamed upload into a
volume (``virsh vol-upload --offset --length``), so a browser can send a large file in pieces."""
from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from collections.abc import Iterable

import libvirt

from .errors import InvalidRequest, PoolNotFound
from .registry import Connection
from .storage import STREAM_CHUNK, Pool, PoolSpec, Volume, VolumeSpec, pool_define, pool_lookup


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


def upload_range(volume: Volume, chunks: Iterable[bytes], *, offset: int, length: int) -> int:
    """Write exactly ``length`` bytes from ``chunks`` into ``volume`` at ``offset``; returns the bytes written.

    Streamed: only one chunk is held at a time. Any failure aborts the libvirt stream.
    """
    if offset < 0 or length <= 0:
        raise InvalidRequest("An upload piece needs an offset of zero or more and a length above zero.")
    conn = volume.conn
    stream = conn.call(lambda c: c.newStream(0))
    conn.run(lambda: volume.raw.upload(stream, offset, length, 0))
    sent = 0
    try:
        for data in chunks:
            if not data:
                continue
            if sent + len(data) > length:
                raise InvalidRequest(f"More data than announced ({length} bytes).")
            for start in range(0, len(data), STREAM_CHUNK):
                sent += _send(conn, stream, data[start:start + STREAM_CHUNK])
        if sent != length:
            raise InvalidRequest(f"The piece ended after {sent} of {length} bytes.")
        conn.run(stream.finish)
    except BaseException:
        try:
            stream.abort()
        except libvirt.libvirtError:
            pass
        raise
    return sent


def _send(conn: Connection, stream: libvirt.virStream, piece: bytes) -> int:
    """Send all of ``piece`` (a blocking stream may take it in several goes)."""
    done = 0
    while done < len(piece):
        done += conn.run(functools.partial(stream.send, piece[done:]))
    return len(piece)
