"""Every read about virtual machines: libvirt's state joined with the portal's ownership records.

Selectors only read, and return plain data: no libvirt handle and no write leaves this module. Where the records
and libvirt disagree (a VM defined or deleted with ``virsh``), :func:`vm_list` reports the difference as
:class:`RecordsDrift`; the caller hands it to ``services.vm_records_sync``, which writes.
"""
from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass, field

from django.db.models import CharField
from django.db.models.functions import Cast

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, actor_id, is_staff, require_vm, vm_may_see_unowned
from kvmweb.accounts.selectors import Usage, usage_provider
from kvmweb.core.errors import NotFoundError
from kvmweb.audit.models import AuditEntry
from kvmweb.hosts.models import Host
from kvmweb.jobs.models import Job
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hosts.services import host_connection

from .handles import vm_handle
from .models import VirtualMachine


@dataclass(frozen=True)
class VmRecord:
    """The few columns of a VirtualMachine row a list needs (no model instances: lists of thousands stay cheap)."""

    pk: int
    uuid: str
    name: str
    owner_id: int | None
    owner_name: str | None


@dataclass(frozen=True, slots=True)
class VmRow:
    """One VM of a list: libvirt's facts and who owns it."""

    host: Host
    uuid: str
    name: str
    id: int | None
    state: hv.DomainState
    owner_id: int | None
    owner_name: str | None
    vcpus: int | None = None
    memory_kib: int | None = None
    max_memory_kib: int | None = None


@dataclass(frozen=True)
class RecordsDrift:
    """How one host's records differ from what libvirt listed: domains without a record (defined outside the
    portal), records without a domain (deleted outside it), and renamed domains."""

    host: Host
    missing: tuple[tuple[str, str], ...] = ()  # (uuid, name)
    stale: tuple[str, ...] = ()  # uuids
    renamed: tuple[tuple[str, str], ...] = ()  # (uuid, new name)

    def __bool__(self) -> bool:
        return bool(self.missing or self.stale or self.renamed)


@dataclass
class VmList:
    rows: list[VmRow] = field(default_factory=list)  # the requested page, with vCPUs and memory
    total: int = 0  # rows matching the filters, on every page
    unavailable: list[tuple[Host, str]] = field(default_factory=list)  # hosts that did not answer, and why
    drift: list[RecordsDrift] = field(default_factory=list)


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


def _drift(host: Host, records: dict[str, VmRecord], summaries: list[hv.DomainSummary]) -> RecordsDrift:
    live = {s.uuid: s for s in summaries}
    return RecordsDrift(
        host=host,
        missing=tuple((u, s.name) for u, s in live.items() if u not in records),
        stale=tuple(u for u in records if u not in live),
        renamed=tuple((u, live[u].name) for u, r in records.items() if u in live and r.name != live[u].name),
    )


def _host_listing(host: Host) -> tuple[dict[str, VmRecord], list[hv.DomainSummary], RecordsDrift]:
    """A host's records and domains (one query, one bulk libvirt call) and how they differ. Records are read first,
    so a VM defined meanwhile is never reported as a stale record."""
    records = _records(host=host)
    summaries = hv.domain_list(host_connection(host), sizes=False)
    return records, summaries, _drift(host, records, summaries)


def host_drift(host: Host) -> RecordsDrift:
    """How ``host``'s records differ from libvirt now (for reconciling after missed events)."""
    return _host_listing(host)[2]


def _row(host: Host, summary: hv.DomainSummary, record: VmRecord | None) -> VmRow:
    return VmRow(host=host, uuid=summary.uuid, name=summary.name, id=summary.id, state=summary.state,
                 owner_id=record.owner_id if record else None, owner_name=record.owner_name if record else None,
                 vcpus=summary.vcpus, memory_kib=summary.memory_kib, max_memory_kib=summary.max_memory_kib)


def vm_list(*, actor: Actor, name: str = "", state: str = "", host_id: int | None = None, offset: int = 0,
            limit: int | None = None) -> VmList:
    """The VMs ``actor`` may see (``virsh list --all`` over every host), filtered, sorted by name; the page
    ``offset``/``limit`` comes with vCPUs and memory.

    Per host: one database query and one bulk libvirt call for the list, and one more bulk call for the sizes of
    the page's rows — the number of libvirt calls does not grow with the number of VMs.
    """
    result = VmList()
    hosts = host_queryset()
    if host_id is not None:
        hosts = hosts.filter(pk=host_id)
    staff, me = is_staff(actor), actor_id(actor)
    unowned_ok = vm_may_see_unowned(actor)
    needle = name.strip().lower()
    matched: list[tuple[Host, hv.DomainSummary, VmRecord | None]] = []
    for host in hosts:
        try:
            records, summaries, drift = _host_listing(host)
        except hv.HypervisorError as exc:
            result.unavailable.append((host, exc.detail))
            continue
        if drift:
            result.drift.append(drift)
        for summary in summaries:
            record = records.get(summary.uuid)
            owner = record.owner_id if record else None
            if not (staff or (owner is not None and owner == me) or (owner is None and unowned_ok)):
                continue
            if needle and needle not in summary.name.lower():
                continue
            if state and summary.state.slug != state:
                continue
            matched.append((host, summary, record))
    matched.sort(key=lambda m: (m[1].name.lower(), m[0].name))
    result.total = len(matched)
    page = matched[offset:offset + limit if limit is not None else None]
    sized = _sizes(page)
    result.rows = [_row(host, sized.get(summary.uuid, summary), record) for host, summary, record in page]
    return result


def _sizes(page: list[tuple[Host, hv.DomainSummary, VmRecord | None]]) -> dict[str, hv.DomainSummary]:
    """vCPUs and memory of the page's domains: one bulk libvirt call per host among them."""
    by_host: dict[int, tuple[Host, list[hv.DomainSummary]]] = {}
    for host, summary, _record in page:
        by_host.setdefault(host.pk, (host, []))[1].append(summary)
    sized: dict[str, hv.DomainSummary] = {}
    for host, summaries in by_host.values():
        try:
            sized.update((s.uuid, s) for s in hv.domain_fill_sizes(host_connection(host), summaries))
        except hv.HypervisorError:
            continue  # the host went away between the two calls: show the rows without sizes
    return sized


def vm_get(*, actor: Actor, uuid: str | uuid_mod.UUID, action: VmAction = VmAction.VIEW) -> VirtualMachine:
    """The record of a VM ``actor`` may see (and do ``action`` with); NotFoundError for missing and for not-yours
    alike."""
    try:
        key = uuid_mod.UUID(str(uuid))
    except ValueError:
        raise NotFoundError("No such virtual machine.") from None
    record: VirtualMachine | None = VirtualMachine.objects.select_related("host", "owner").filter(uuid=key).first()
    if record is None:
        raise NotFoundError("No such virtual machine.")
    require_vm(actor, record, action)
    return record


def vm_state(vm: VirtualMachine) -> hv.DomainState:
    """The VM's state now (one libvirt call)."""
    return vm_handle(vm).state()


@dataclass(frozen=True)
class VmDetail:
    """Everything the VM page and ``GET /api/v1/vms/{uuid}/`` show: ``virsh dominfo``, the drives, the display."""

    record: VirtualMachine
    info: hv.DomainInfo
    disks: tuple[hv.DiskInfo, ...]
    vnc: hv.VncDisplay | None
    has_serial_console: bool
    xml: str  # as ``virsh dumpxml`` shows it: secrets left out

    @property
    def state(self) -> hv.DomainState:
        return self.info.state


def vm_detail(*, actor: Actor, uuid: str | uuid_mod.UUID) -> VmDetail:
    record = vm_get(actor=actor, uuid=uuid)
    dom = vm_handle(record)
    xml = dom.xml()
    doc = hv.DomainDocument.from_xml(xml)
    return VmDetail(record=record, info=dom.info(), disks=tuple(d.info() for d in doc.disks),
                    vnc=doc.vnc_display(), has_serial_console=doc.has_serial_console, xml=xml)


def vm_owner_ids(uuids: list[str]) -> dict[str, int | None]:
    """uuid → owner id of the records among ``uuids`` (one query)."""
    keys = [uuid_mod.UUID(u) for u in uuids]
    return {str(u): o for u, o in VirtualMachine.objects.filter(uuid__in=keys).values_list("uuid", "owner_id")}


@usage_provider
def vm_usage(user: Actor, usage: Usage) -> None:
    """The quota's VMs, vCPUs and memory: the user's records (one query), and per host with such VMs one bulk listing
    and one bulk size read. A host that does not answer counts its VMs with 0 vCPUs and memory."""
    by_host: dict[int, tuple[Host, set[str]]] = {}
    for vm in VirtualMachine.objects.filter(owner_id=actor_id(user)).select_related("host"):
        usage.vms += 1
        by_host.setdefault(vm.host_id, (vm.host, set()))[1].add(str(vm.uuid))
    for host, uuids in by_host.values():
        try:
            conn = host_connection(host)
            mine = [s for s in hv.domain_list(conn, sizes=False) if s.uuid in uuids]
            for summary in hv.domain_fill_sizes(conn, mine):
                usage.vcpus += summary.vcpus or 0
                usage.memory_mib += (summary.max_memory_kib or 0) // 1024
        except hv.HypervisorError:
            usage.unavailable.append(host.name)


@dataclass(frozen=True)
class VmActivity:
    """What happened to a VM lately: its jobs and its audit entries (who did what, and how it ended)."""

    jobs: list[Job]
    entries: list[AuditEntry]


def vm_activity(*, actor: Actor, vm: VirtualMachine, limit: int = 10) -> VmActivity:
    require_vm(actor, vm, VmAction.VIEW)
    uuid = str(vm.uuid)
    jobs = list(Job.objects.filter(target_type="vm", target=uuid).select_related("actor")[:limit])
    entries = list(AuditEntry.objects.filter(target_type="vm", target__endswith=uuid).select_related("actor")
                   .order_by("-pk")[:limit])
    return VmActivity(jobs=jobs, entries=entries)
