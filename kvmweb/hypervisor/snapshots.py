"""Internal snapshots of a domain (qcow2): ``virsh snapshot-create-as``, ``snapshot-list --tree``,
``snapshot-revert`` and ``snapshot-delete [--children]``.

A snapshot lives inside each qcow2 disk (QEMU's ``savevm``/``qemu-img snapshot``); libvirt keeps its metadata with
the domain (name, description, creation time, the state the domain was in, the parent). A running domain's snapshot
holds its memory too: libvirt 9 with QEMU refuses an internal snapshot of a running domain without its memory
("internal snapshot of a running VM must include the memory state"), so :func:`snapshot_refusal` says so before
anything is tried. A shut-off domain's snapshot holds its disks only.

:class:`SnapshotSpec` renders ``<domainsnapshot>`` with lxml; :class:`SnapshotInfo` is one snapshot as read back.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone

import libvirt
from lxml import etree

from .domain import Domain
from .domain_xml import DomainDocument
from .errors import InvalidRequest, SnapshotNotFound
from .names import validate_name
from .xmlnode import Attr, Text, XmlNode, ensure, parse_element

MAX_INDENT = 12  # tree levels a page indents
SNAPSHOT_DESCRIPTION_MAX = 1000  # characters of a snapshot's description

RUNNING_WITHOUT_MEMORY = ("An internal snapshot of a running VM must include its memory state (libvirt and QEMU "
                          "cannot take a disk-only internal snapshot while the guest runs): include the memory, or "
                          "shut the VM off first.")


class SnapshotSpec(XmlNode):
    """``<domainsnapshot>`` as ``virsh snapshot-create-as NAME --description TEXT`` writes it: a name, a
    description, whether the memory state is saved (internal) and which disks are snapshotted internally (the
    others, CD-ROMs, get ``snapshot='no'``)."""

    TAG = "domainsnapshot"
    name = Text("name")
    description = Text("description")
    memory_mode = Attr("memory", "snapshot")

    @classmethod
    def new(cls, *, name: str, description: str = "", memory: bool, disks: tuple[str, ...] = (),
            skip: tuple[str, ...] = ()) -> SnapshotSpec:
        """``memory``: save the running guest's memory in the snapshot; ``disks``: targets snapshotted inside their
        qcow2 file; ``skip``: targets left out (CD-ROMs)."""
        validate_name(name, what="snapshot name")
        if len(description) > SNAPSHOT_DESCRIPTION_MAX:
            raise InvalidRequest(f"A snapshot's description may have at most {SNAPSHOT_DESCRIPTION_MAX} characters.")
        spec = cls(etree.Element("domainsnapshot"))
        spec.name = name
        if description:
            spec.description = description
        spec.memory_mode = "internal" if memory else "no"
        if disks or skip:
            holder = ensure(spec.element, "disks")
            for target in disks:
                etree.SubElement(holder, "disk", name=target, snapshot="internal")
            for target in skip:
                etree.SubElement(holder, "disk", name=target, snapshot="no")
        return spec


@dataclass(frozen=True)
class SnapshotInfo:
    """One row of ``virsh snapshot-list --parent --current`` with what ``snapshot-info`` adds."""

    name: str
    description: str
    created: int  # seconds since the epoch
    state: str  # the domain's state when it was taken: running, paused, shutoff (libvirt's words)
    parent: str | None
    current: bool
    memory: bool  # holds the memory state (reverting resumes the guest where it was)
    disks: tuple[str, ...]  # targets snapshotted internally

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.created, tz=timezone.utc)

    @property
    def was_active(self) -> bool:
        return self.state in ("running", "paused", "blocked", "idle", "pmsuspended")


@dataclass(frozen=True)
class SnapshotNode:
    """A snapshot in the tree: ``depth`` 0 for a root (``virsh snapshot-list --tree`` indentation)."""

    snapshot: SnapshotInfo
    depth: int
    children: int

    @property
    def indent(self) -> int:
        """The depth shown (a page indents at most this far)."""
        return min(self.depth, MAX_INDENT)


def _parse(xml: str, *, current: bool) -> SnapshotInfo:
    root = parse_element(xml)
    parent = (root.findtext("parent/name") or "").strip() or None
    memory = root.find("memory")
    disks = tuple(d.get("name", "") for d in root.findall("disks/disk") if d.get("snapshot") == "internal")
    created = (root.findtext("creationTime") or "0").strip()
    return SnapshotInfo(
        name=(root.findtext("name") or "").strip(), description=root.findtext("description") or "",
        created=int(created) if created.isdigit() else 0, state=(root.findtext("state") or "").strip(),
        parent=parent, current=current,
        memory=memory is not None and memory.get("snapshot") in ("internal", "external"), disks=disks,
    )


def snapshot_refusal(doc: DomainDocument, *, running: bool = False, memory: bool = True) -> str | None:
    """Why the domain of ``doc`` cannot take an internal snapshot (words for a person), or None when it can.

    Every disk but CD-ROMs must be a qcow2 file that is neither shared nor read-only; a running domain's snapshot
    must include the memory (see the module's description); a domain with a UEFI variable store (pflash) cannot
    (libvirt 9 refuses internal snapshots with pflash firmware)."""
    disks = [d for d in doc.disks if not d.is_cdrom]
    if not disks:
        return "It has no disk to snapshot (only CD-ROM drives)."
    for disk in disks:
        target = disk.target or "?"
        kind = disk.kind or "file"
        if disk.source is None:
            return f"Disk {target} has no source (an empty drive)."
        if kind != "file":
            return (f"Disk {target} is not backed by a file (it is a {kind} disk): internal snapshots need a qcow2 "
                    "file.")
        if not disk.format:
            return f"Disk {target} declares no format: internal snapshots need a qcow2 disk."
        if disk.format != "qcow2":
            return (f"Disk {target} is {disk.format}, not qcow2: only qcow2 disks hold internal snapshots (convert "
                    "it, or detach it).")
        if disk.shareable:
            return f"Disk {target} is shared with other VMs (shareable): a snapshot of it would not be this VM's own."
        if disk.readonly:
            return f"Disk {target} is read-only (and is not a CD-ROM): it cannot take a snapshot."
    if doc.nvram or doc.element.find("os/loader[@type='pflash']") is not None:
        return "It boots with UEFI firmware (pflash): libvirt cannot take internal snapshots of such VMs."
    if running and not memory:
        return RUNNING_WITHOUT_MEMORY
    return None


def snapshot_disks(doc: DomainDocument) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(targets to snapshot, targets to leave out: the CD-ROMs) of ``doc``."""
    take = tuple(d.target or "" for d in doc.disks if not d.is_cdrom)
    skip = tuple(d.target or "" for d in doc.disks if d.is_cdrom)
    return take, skip


def _lookup(dom: Domain, name: str) -> libvirt.virDomainSnapshot:
    try:
        return dom.conn.run(lambda: dom.raw.snapshotLookupByName(name, 0))
    except SnapshotNotFound:
        raise SnapshotNotFound(f"{dom.name} has no snapshot named {name!r}.") from None


def _current_name(dom: Domain) -> str | None:
    if not dom.conn.run(lambda: dom.raw.hasCurrentSnapshot(0)):
        return None
    try:
        return str(dom.conn.run(lambda: dom.raw.snapshotCurrent(0).getName()))
    except SnapshotNotFound:
        return None  # deleted between the two calls


def snapshot_list(dom: Domain) -> list[SnapshotInfo]:
    """Every snapshot of ``dom``, oldest first (``virsh snapshot-list --parent``): one list call, one XML read per
    snapshot (libvirt has no bulk read of snapshot XML)."""
    snaps = dom.conn.run(lambda: dom.raw.listAllSnapshots(0))
    current = _current_name(dom) if snaps else None
    rows = []
    for snap in snaps:
        try:
            xml = dom.conn.run(functools.partial(snap.getXMLDesc, 0))
        except SnapshotNotFound:
            continue  # deleted between the two calls
        rows.append(_parse(xml, current=False))
    rows = [SnapshotInfo(**{**vars(r), "current": r.name == current}) for r in rows]
    rows.sort(key=lambda r: (r.created, r.name))
    return rows


def snapshot_get(dom: Domain, name: str) -> SnapshotInfo:
    """One snapshot (``virsh snapshot-info``); SnapshotNotFound when ``dom`` has none of that name."""
    snap = _lookup(dom, name)
    xml = dom.conn.run(lambda: snap.getXMLDesc(0))
    return _parse(xml, current=bool(dom.conn.run(lambda: snap.isCurrent(0))))


def snapshot_exists(dom: Domain, name: str) -> bool:
    try:
        _lookup(dom, name)
    except SnapshotNotFound:
        return False
    return True


def snapshot_create(dom: Domain, spec: SnapshotSpec) -> SnapshotInfo:
    """``virsh snapshot-create``: take the snapshot ``spec`` describes (QEMU pauses a running guest while it saves
    the memory, then resumes it). It becomes the current snapshot."""
    xml = spec.to_xml()
    snap = dom.conn.run(lambda: dom.raw.snapshotCreateXML(xml, 0))
    return _parse(dom.conn.run(lambda: snap.getXMLDesc(0)), current=True)


def snapshot_revert(dom: Domain, name: str) -> SnapshotInfo:
    """``virsh snapshot-revert``: the disks (and the memory, if it holds it) as they were, and the domain in the
    state it was in: running (``REVERT_RUNNING``), paused (``REVERT_PAUSED``) or shut off (a running domain is
    stopped). What the domain had since is lost."""
    snap = _lookup(dom, name)
    info = _parse(dom.conn.run(lambda: snap.getXMLDesc(0)), current=False)
    flags = 0
    if info.state == "paused":
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
    elif info.was_active:
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
    dom.conn.run(lambda: dom.raw.revertToSnapshot(snap, flags))
    return SnapshotInfo(**{**vars(info), "current": True})


def snapshot_delete(dom: Domain, name: str, *, children: bool = False) -> None:
    """``virsh snapshot-delete [--children]``: remove the snapshot from its disks and its metadata; with
    ``children`` its descendants too (otherwise they move up to its parent)."""
    snap = _lookup(dom, name)
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN if children else 0
    dom.conn.run(lambda: snap.delete(flags))


def descendants(rows: list[SnapshotInfo], name: str) -> list[str]:
    """The names below ``name`` in the tree (children, their children...)."""
    below: list[str] = []
    todo = [name]
    while todo:
        parent = todo.pop()
        kids = [r.name for r in rows if r.parent == parent]
        below += kids
        todo += kids
    return below


def arrange_tree(rows: list[SnapshotInfo]) -> list[SnapshotNode]:
    """``rows`` in tree order (each parent before its children, siblings oldest first), with their depth."""
    names = {r.name for r in rows}
    by_parent: dict[str | None, list[SnapshotInfo]] = {}
    for row in sorted(rows, key=lambda r: (r.created, r.name)):
        by_parent.setdefault(row.parent if row.parent in names else None, []).append(row)
    out: list[SnapshotNode] = []

    def walk(parent: str | None, depth: int) -> None:
        for row in by_parent.get(parent, []):
            out.append(SnapshotNode(snapshot=row, depth=depth, children=len(by_parent.get(row.name, []))))
            walk(row.name, depth + 1)

    walk(None, 0)
    return out
