"""Backups of a running domain through libvirt's backup API (``virsh backup-begin``, push mode) and the domain job
that carries them out (``virsh domjobinfo``, ``virsh domjobabort``).

Push mode: QEMU copies each chosen disk, as it was when the backup began, into a target file while the guest keeps
running. The targets here are volumes made beforehand in a pool (qcow2, the disk's virtual size) and handed over
with ``REUSE_EXTERNAL``: libvirt labels them for QEMU during the job and gives them back afterwards, and the pool
knows them from the start (so a failed or cancelled backup's files are deleted like any volume). A disk not backed
up is listed with ``backup='no'``; CD-ROMs are never backed up.

The :class:`~.domain.Domain` handle carries the verbs (``backup_begin``, ``job``, ``job_completed``, ``job_abort``);
this module holds the typed document and what a job's statistics say.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libvirt
from lxml import etree

from .errors import InvalidRequest
from .xmlnode import parse_element, serialize

TARGET_FORMATS = ("qcow2", "raw")
BACKUP_BEGIN_FLAGS = libvirt.VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL

_OPERATIONS = {
    libvirt.VIR_DOMAIN_JOB_OPERATION_BACKUP: "backup",
    libvirt.VIR_DOMAIN_JOB_OPERATION_SAVE: "save",
    libvirt.VIR_DOMAIN_JOB_OPERATION_RESTORE: "restore",
    libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT: "migration",
    libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN: "migration",
    libvirt.VIR_DOMAIN_JOB_OPERATION_SNAPSHOT: "snapshot",
    libvirt.VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT: "snapshot revert",
    libvirt.VIR_DOMAIN_JOB_OPERATION_DUMP: "dump",
}
_ACTIVE = (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED)


@dataclass(frozen=True)
class BackupTarget:
    """One disk to back up: its target name in the domain (``vda``) and the file the backup writes."""

    disk: str
    file: str
    format: str = "qcow2"


@dataclass(frozen=True)
class BackupSpec:
    """A push-mode ``<domainbackup>``: ``targets`` are backed up, the disks named in ``skip`` are not."""

    targets: tuple[BackupTarget, ...]
    skip: tuple[str, ...] = ()

    def validate(self) -> None:
        if not self.targets:
            raise InvalidRequest("A backup needs at least one disk.")
        names = [t.disk for t in self.targets] + list(self.skip)
        if len(set(names)) != len(names):
            raise InvalidRequest("A disk is named twice in the backup.")
        for target in self.targets:
            if target.format not in TARGET_FORMATS:
                raise InvalidRequest(f"A backup target's format is qcow2 or raw, not {target.format!r}.")
            if not target.file.startswith("/"):
                raise InvalidRequest(f"A backup target must be an absolute path, not {target.file!r}.")

    def to_xml(self) -> str:
        self.validate()
        root = etree.Element("domainbackup", mode="push")
        disks = etree.SubElement(root, "disks")
        for target in self.targets:
            disk = etree.SubElement(disks, "disk", name=target.disk, backup="yes", type="file")
            etree.SubElement(disk, "driver", type=target.format)
            etree.SubElement(disk, "target", file=target.file)
        for name in self.skip:
            etree.SubElement(disks, "disk", name=name, backup="no")
        return serialize(root)

    @classmethod
    def from_xml(cls, xml: str) -> BackupSpec:
        root = parse_element(xml)
        targets, skip = [], []
        for disk in root.iterfind("disks/disk"):
            name = disk.get("name", "")
            if disk.get("backup", "yes") == "no":
                skip.append(name)
                continue
            driver, target = disk.find("driver"), disk.find("target")
            targets.append(BackupTarget(disk=name, file=target.get("file", "") if target is not None else "",
                                        format=driver.get("type", "qcow2") if driver is not None else "qcow2"))
        return cls(targets=tuple(targets), skip=tuple(skip))


@dataclass(frozen=True)
class DomainJob:
    """A domain job as ``virsh domjobinfo`` shows it: what it does, bytes done of bytes to do, how it ended."""

    operation: str  # "backup", "migration"... ("" when libvirt does not say)
    active: bool
    processed: int  # bytes
    total: int
    elapsed_ms: int = 0
    success: bool | None = None  # a finished job's outcome (None while it runs)
    error: str = ""

    @property
    def percent(self) -> int:
        return int(100 * self.processed / self.total) if self.total else 0


def parse_job_stats(stats: dict[str, Any]) -> DomainJob | None:
    """A :class:`DomainJob` from ``virDomainGetJobStats``'s typed parameters; None for "no job"."""
    kind = int(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE))
    if kind == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    processed = int(stats.get("disk_processed", stats.get("data_processed", 0)))
    total = int(stats.get("disk_total", stats.get("data_total", 0)))
    success: bool | None = None
    if kind == libvirt.VIR_DOMAIN_JOB_COMPLETED:
        success = bool(stats.get("success", True))
    elif kind in (libvirt.VIR_DOMAIN_JOB_FAILED, libvirt.VIR_DOMAIN_JOB_CANCELLED):
        success = False
    return DomainJob(operation=_OPERATIONS.get(int(stats.get("operation", -1)), ""), active=kind in _ACTIVE,
                     processed=processed, total=total, elapsed_ms=int(stats.get("time_elapsed", 0)),
                     success=success, error=str(stats.get("errmsg", "")))
