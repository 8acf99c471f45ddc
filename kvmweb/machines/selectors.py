"""Every read about virtual machines: libvirt's state joined with the portal's ownership records."""
from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import CharField
from django.db.models.functions import Cast

from kvmweb import hypervisor as hv
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hosts.services import host_connection

from .models import VirtualMachine

Actor = AbstractBaseUser | AnonymousUser


def is_staff(actor: Actor) -> bool:
    return bool(getattr(actor, "is_staff", False) and actor.is_active)


def can_see(actor: Actor, vm: VirtualMachine) -> bool:
    return is_staff(actor) or (vm.owner_id is not None and vm.owner_id == getattr(actor, "pk", None))


@dataclass(frozen=True)
class VmRecord:
    """The few columns of a VirtualMachine row a list needs (no model instances: lists of thousands stay cheap)."""

    pk: int
    uuid: str
    name: str
    owner_id: int | None
    owner_name: str | None


@dataclass(slots=True)
class VmRow:
    host: Host
    record: VmRecord
    summary: hv.DomainSummary

    @property
    def uuid(self) -> str:
        return self.summary.uuid

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def state(self) -> hv.DomainState:
        return self.summary.state

    @property
    def owner_name(self) -> str | None:
        return self.record.owner_name


@dataclass
class VmList:
    rows: list[VmRow] = field(default_factory=list)
    unavailable: list[tuple[Host, str]] = field(default_factory=list)  # hosts that did not answer, and why


_RECORD_COLUMNS = ("pk", "uuid_text", "name", "owner_id", "owner__username")


def _records(**filters: object) -> dict[str, VmRecord]:
    """Records keyed by the canonical UUID string. The UUID column is read as text (no UUID object per row: the
    list of a host with thousands of VMs spends most of its database time there otherwise)."""
    rows = (VirtualMachine.objects.filter(**filters).annotate(uuid_text=Cast("uuid", CharField()))
            .values_list(*_RECORD_COLUMNS))
    records = {}
    for pk, text, name, owner_id, owner_name in rows:
        key = _canonical(text)
        records[key] = VmRecord(pk, key, name, owner_id, owner_name)
    return records


def _canonical(text: str) -> str:
    """'3b1f6a527c2e...' (SQLite keeps UUIDs as 32 hex digits) or the dashed form → the dashed lower-case form."""
    text = text.lower()
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _reconcile(host: Host, summaries: list[hv.DomainSummary]) -> dict[str, VmRecord]:
    """Make the records of ``host`` match what libvirt listed: add unowned rows for domains defined outside the
    portal, drop rows of domains deleted outside it, follow renames. One query when nothing changed."""
    records = _records(host=host)
    live = {s.uuid: s for s in summaries}
    stale = [r.pk for u, r in records.items() if u not in live]
    if stale:
        VirtualMachine.objects.filter(pk__in=stale).delete()
    missing = [VirtualMachine(host=host, uuid=uuid_mod.UUID(u), name=s.name) for u, s in live.items() if u not in records]
    if missing:
        VirtualMachine.objects.bulk_create(missing, ignore_conflicts=True)
        records.update(_records(host=host, uuid__in=[m.uuid for m in missing]))
    renamed = {r.pk: live[u].name for u, r in records.items() if u in live and r.name != live[u].name}
    for pk, name in renamed.items():
        VirtualMachine.objects.filter(pk=pk).update(name=name)
    return {u: r for u, r in records.items() if u in live}


def vm_list(
    *, actor: Actor, name: str = "", state: str = "", host_id: int | None = None, sizes: bool = True,
) -> VmList:
    """The VMs ``actor`` may see (``virsh list --all`` over every host), filtered.

    One bulk libvirt call and one database query per host: the cost does not grow with the number of VMs
    beyond building the rows. ``sizes=False`` leaves vCPUs/memory empty: pages fill them for the rows they
    show with :func:`vm_rows_sized` (one more call per host).
    """
    result = VmList()
    hosts = host_queryset()
    if host_id is not None:
        hosts = hosts.filter(pk=host_id)
    staff = is_staff(actor)
    needle = name.strip().lower()
    for host in hosts:
        try:
            summaries = hv.list_domains(host_connection(host), sizes=sizes)
        except hv.HypervisorError as exc:
            result.unavailable.append((host, exc.detail))
            continue
        records = _reconcile(host, summaries)
        for summary in summaries:
            record = records.get(summary.uuid)
            if record is None or not (staff or record.owner_id == actor.pk):
                continue
            if needle and needle not in summary.name.lower():
                continue
            if state and summary.state.slug != state:
                continue
            result.rows.append(VmRow(host=host, record=record, summary=summary))
    result.rows.sort(key=lambda r: (r.name.lower(), r.host.name))
    return result


def vm_rows_sized(rows: list[VmRow]) -> list[VmRow]:
    """``rows`` with vCPUs and memory filled in: one bulk libvirt call per host among them."""
    by_host: dict[int, list[VmRow]] = {}
    for row in rows:
        by_host.setdefault(row.host.pk, []).append(row)
    sized: dict[str, hv.DomainSummary] = {}
    for host_rows in by_host.values():
        host = host_rows[0].host
        try:
            for summary in hv.fill_sizes(host_connection(host), [r.summary for r in host_rows]):
                sized[summary.uuid] = summary
        except hv.HypervisorError:
            continue  # the host went away between the two calls: show the rows without sizes
    return [VmRow(host=r.host, record=r.record, summary=sized.get(r.uuid, r.summary)) for r in rows]


def vm_get(*, actor: Actor, uuid: str | uuid_mod.UUID) -> VirtualMachine:
    """The record of a VM ``actor`` may see; NotFoundError for missing and for not-yours alike."""
    try:
        key = uuid_mod.UUID(str(uuid))
    except ValueError:
        raise NotFoundError("No such virtual machine.") from None
    record = VirtualMachine.objects.select_related("host", "owner").filter(uuid=key).first()
    if record is None or not can_see(actor, record):
        raise NotFoundError("No such virtual machine.")
    return record


def vm_domain(vm: VirtualMachine) -> hv.Domain:
    """The libvirt handle of a record; a domain deleted outside the portal drops its record and is a 404."""
    try:
        return hv.lookup(host_connection(vm.host), str(vm.uuid))
    except hv.DomainNotFound:
        VirtualMachine.objects.filter(pk=vm.pk).delete()
        raise NotFoundError(f"The virtual machine {vm.name} no longer exists on {vm.host}.") from None


@dataclass(frozen=True)
class VmDetail:
    record: VirtualMachine
    info: hv.DomainInfo
    block_devices: list[hv.BlockDevice]
    vnc: hv.VncDisplay | None
    spec: hv.DomainSpec
    xml: str


def vm_detail(*, actor: Actor, uuid: str | uuid_mod.UUID) -> VmDetail:
    record = vm_get(actor=actor, uuid=uuid)
    dom = vm_domain(record)
    xml = dom.xml()
    info = dom.info()
    if record.name != info.name:
        record.name = info.name
        record.save(update_fields=["name"])
    return VmDetail(
        record=record, info=info, block_devices=dom.block_devices(xml), vnc=dom.vnc(xml),
        spec=hv.DomainSpec.from_xml(xml), xml=xml,
    )
