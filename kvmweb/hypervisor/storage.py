"""Storage volumes and pools: the parts the domain verbs need."""
from __future__ import annotations

from dataclasses import dataclass

import libvirt

from .errors import VolumeNotFound
from .registry import Connection


@dataclass
class Volume:
    conn: Connection
    _vol: libvirt.virStorageVol
    path: str
    name: str

    def delete(self) -> None:
        self.conn.run(lambda: self._vol.delete(0))


def volume_for_path(conn: Connection, path: str) -> Volume | None:
    """The storage volume a file belongs to, or None when no pool holds it."""
    try:
        vol = conn.call(lambda c: c.storageVolLookupByPath(path))
    except VolumeNotFound:
        return None
    return Volume(conn, vol, path=path, name=vol.name())
