"""Install media (ISO) helpers: a directory pool that is created on demand and world-readable media volumes.
Uploads in pieces use ``Volume.upload(chunks, length=, offset=)`` (``virsh vol-upload --offset --length``)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

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
