"""Every read about virtual machines: libvirt's state joined with the portal's ownership records.

Selectors only read, and return plain data: no libvirt handle and no write leaves this module. Where the records
and libvirt disagree (a VM defined or deleted with ``virsh``), :func:`vm_list` reports the difference as
:class:`RecordsDrift`; the caller hands it to ``services.vm_records_sync``, which writes.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid as uuid_mod
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Cast, Replace
from django.utils import timezone

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import (
    Actor, VmAction, VmRole, actor_id, is_staff, jobs_visible_q, require_vm, role_may, vm_may_see_unowned,
    vm_records_provider, vm_uuids_visible, vm_visible_q,
)
from kvmweb.accounts.selectors import Usage, usage_provider
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.audit.models import AuditEntry
from kvmweb.hosts.models import Host
from kvmweb.jobs.models import Job
from kvmweb.hosts.selectors import host_queryset
from kvmweb.monitoring.selectors import latest_for
from kvmweb.hosts.services import host_connection

from .handles import vm_handle, vm_moving
from .models import VirtualMachine, VmShare

log = logging.getLogger(__name__)

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
    role: VmRole = VmRole.NONE  # the reader's role on it (owner, staff, or what a share gives)
    cpu_pct: float | None = None  # the latest usage sample of a running VM (monitoring), None without one
    mem_used_bytes: float | None = None
    mem_pct: float | None = None

    @property
    def may_operate(self) -> bool:
        """Whether the reader may start, stop, reboot it (the row's actions)."""
        return role_may(self.role, VmAction.OPERATE)

    @property
    def shared_role(self) -> str:
        """The role a share gives the reader ("viewer", ...); empty for its owner and staff."""
        return self.role.label if VmRole.NONE < self.role < VmRole.OWNER else ""


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


# A record as the list reads it: (name, owner id, pk), keyed by its UUID as 32 lower-case hex digits.
_Record = tuple[str, "int | None", int]


def _records(**filters: object) -> dict[str, _Record]:
    """Records as {UUID in 32 hex digits: (name, owner id, pk)}, plain tuples: the UUID is read as text in the same
    form from every database (no UUID object and no formatting per row: the list of a host with thousands of VMs
    reads all of them on every page)."""
    key = Replace(Cast("uuid", CharField()), Value("-"), Value(""))
    rows = VirtualMachine.objects.filter(**filters).annotate(key=key).values_list("key", "name", "owner_id", "pk")
    return {k: (n, o, p) for k, n, o, p in rows}


def _canonical(text: str) -> str:
    """'3b1f6a527c2e...' (SQLite keeps UUIDs as 32 hex digits) or the dashed form → the dashed lower-case form."""
    text = text.lower()
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _key(uuid: str) -> str:
    """libvirt's UUID string → the records' key."""
    return uuid.replace("-", "")


def _drift(host: Host, records: dict[str, _Record], live: dict[str, hv.DomainEntry], *,
           complete: bool = True) -> RecordsDrift:
    """How ``records`` differ from the domains ``live`` (by key). Only a ``complete`` listing (not one of a state)
    tells a stale record. In step, the usual case, costs two dicts and one comparison of them."""
    if complete and {k: r[0] for k, r in records.items()} == {k: e.name for k, e in live.items()}:
        return RecordsDrift(host=host)
    return RecordsDrift(
        host=host,
        missing=tuple((e.uuid, e.name) for k, e in live.items() if k not in records),
        stale=tuple(str(uuid_mod.UUID(k)) for k in records if k not in live) if complete else (),
        renamed=tuple((e.uuid, e.name) for k, e in live.items() if k in records and records[k][0] != e.name),
    )


def _host_listing(host: Host, *, state: hv.DomainState | None = None
                  ) -> tuple[dict[str, _Record], dict[str, hv.DomainEntry], RecordsDrift]:
    """A host's records and its domains (of ``state`` only, when given), both by key (one query, one cheap libvirt
    listing without states), and how they differ. Records are read first, so a VM defined meanwhile is never
    reported as a stale record."""
    records = _records(host=host)
    live = {_key(e.uuid): e for e in hv.domain_entries(host_connection(host), state=state)}
    return records, live, _drift(host, records, live, complete=state is None)


def host_drift(host: Host) -> RecordsDrift:
    """How ``host``'s records differ from libvirt now (for reconciling after missed events)."""
    return _host_listing(host)[2]


def _list_role(record: _Record | None, *, staff: bool, me: int | None, unowned_ok: bool,
               shared: dict[int, VmRole]) -> VmRole:
    """The reader's role on a listed domain, from what the list read already (no query per row)."""
    owner = record[1] if record else None
    if me is not None and owner == me:
        return VmRole.OWNER
    if staff or (owner is None and unowned_ok):
        return VmRole.STAFF
    return shared.get(record[2], VmRole.NONE) if record else VmRole.NONE


@dataclass(frozen=True, slots=True)
class UsageNow:
    """A running VM's latest usage, as the collector last measured it (monitoring's ``latest``)."""

    cpu_pct: float | None = None  # of its vCPUs, 0-100
    mem_used_bytes: float | None = None
    mem_pct: float | None = None


# The list's orders: by name (the default), or by the latest CPU or memory use, highest first (VMs without a sample
# after those with one).
SORTS = ("name", "cpu", "memory")


def _usage_now(uuids: list[str]) -> dict[str, UsageNow]:
    """The latest usage of ``uuids`` (one read of monitoring's store, however many; VMs without a recent sample
    are left out). A store that does not answer leaves every VM without one: the list still works."""
    if not uuids:
        return {}
    try:
        latest = latest_for(uuids)
    except Exception as exc:  # noqa: BLE001 - usage figures are an extra: never fail the list for them
        log.warning("could not read the latest usage: %s", exc)
        return {}
    return {u: UsageNow(cpu_pct=v.cpu_pct, mem_used_bytes=v.mem_used_bytes, mem_pct=v.mem_pct)
            for u, v in latest.items()}


# One listed domain that matches: its host, the domain (no state yet), and its record.
_Match = tuple[Host, hv.DomainEntry, "_Record | None"]


def _sort(matched: list[_Match], sort: str, usage: dict[str, UsageNow], *, hosts: int) -> None:
    """Name order (case-insensitive; a name on two of the ``hosts`` by host name), or the latest CPU or memory use
    highest first (VMs without a sample last), then name. Stable sorts, each by one cheap key."""
    if hosts > 1:
        matched.sort(key=lambda m: m[0].name)
    matched.sort(key=lambda m: m[1].name.lower())
    if sort in ("cpu", "memory"):
        def by_usage(m: _Match) -> tuple[bool, float]:
            now = usage.get(m[1].uuid)
            value = (now.cpu_pct if sort == "cpu" else now.mem_used_bytes) if now else None
            return (value is None, -(value or 0.0))
        matched.sort(key=by_usage)


def vm_list(*, actor: Actor, name: str = "", state: str = "", host_id: int | None = None, offset: int = 0,
            limit: int | None = None, sort: str = "name") -> VmList:
    """The VMs ``actor`` may see (``virsh list --all`` over every host): owned, shared with them or their groups,
    everything for staff; filtered, sorted by name (or by the latest CPU or memory use, ``sort``: see ``SORTS``);
    the page ``offset``/``limit`` comes with state, vCPUs and memory, and the latest usage of its running VMs.

    Per host: one database query and one cheap libvirt listing (names and UUIDs, no state) for the whole list,
    and one bulk call for the states and sizes of the page's rows — the number of libvirt calls does not grow
    with the number of VMs, and only the page's rows become rows. One query more reads the reader's shares (and
    one the page's owners' names); one read of the monitoring store (one round trip) the latest usage: of the
    page's VMs, or of every matching running VM when the list is sorted by it.
    """
    if sort not in SORTS:
        raise ValidationError(f"Unknown sort {sort!r}; use one of {', '.join(SORTS)}.",
                              fields={"sort": [f"one of {', '.join(SORTS)}"]})
    try:
        wanted = hv.DomainState.from_slug(state) if state else None
    except ValueError:
        raise ValidationError(f"Unknown state {state!r}.", fields={"state": ["a domain state"]}) from None
    result = VmList()
    hosts = host_queryset()
    if host_id is not None:
        hosts = hosts.filter(pk=host_id)
    staff, me = is_staff(actor), actor_id(actor)
    unowned_ok = vm_may_see_unowned(actor)
    needle = name.strip().lower()
    shared = vm_shared_roles(actor) if not staff else {}
    matched: list[_Match] = []
    listed = 0
    for host in hosts:
        try:
            records, live, drift = _host_listing(host, state=wanted)
        except hv.HypervisorError as exc:
            result.unavailable.append((host, exc.detail))
            continue
        listed += 1
        if drift:
            result.drift.append(drift)
        if not staff:  # only the domains the reader may see: theirs, shared with them (and unowned ones, if allowed)
            live = {k: e for k, e in live.items()
                    if _list_role(records.get(k), staff=False, me=me, unowned_ok=unowned_ok, shared=shared)
                    != VmRole.NONE}
        if needle:
            live = {k: e for k, e in live.items() if needle in e.name.lower()}
        get = records.get
        matched.extend([(host, e, get(k)) for k, e in live.items()])
    usage: dict[str, UsageNow] = {}
    if sort != "name":
        usage = _usage_now([m[1].uuid for m in matched if m[1].active])
    _sort(matched, sort, usage, hosts=listed)
    result.total = len(matched)
    page = matched[offset:offset + limit if limit is not None else None]
    summaries = _summaries(page)
    if sort == "name":
        usage = _usage_now([s.uuid for s in summaries.values() if s.state.is_active])
    owners = _owner_names({r[1] for _h, _e, r in page if r and r[1] is not None})
    for host, entry, record in page:
        summary = summaries.get(entry.uuid)
        if summary is None:
            continue  # undefined since the listing
        owner = record[1] if record else None
        role = _list_role(record, staff=staff, me=me, unowned_ok=unowned_ok, shared=shared)
        now = usage.get(entry.uuid) if summary.state.is_active else None
        result.rows.append(VmRow(
            host=host, uuid=entry.uuid, name=entry.name, id=summary.id, state=summary.state, owner_id=owner,
            owner_name=owners.get(owner) if owner is not None else None, vcpus=summary.vcpus,
            memory_kib=summary.memory_kib, max_memory_kib=summary.max_memory_kib, role=role,
            cpu_pct=now.cpu_pct if now else None, mem_used_bytes=now.mem_used_bytes if now else None,
            mem_pct=now.mem_pct if now else None))
    return result


def _summaries(page: list[_Match]) -> dict[str, hv.DomainSummary]:
    """State, vCPUs and memory of the page's domains: one bulk libvirt call per host among them."""
    by_host: dict[int, tuple[Host, list[hv.DomainEntry]]] = {}
    for host, entry, _record in page:
        by_host.setdefault(host.pk, (host, []))[1].append(entry)
    found: dict[str, hv.DomainSummary] = {}
    for host, entries in by_host.values():
        try:
            found.update((s.uuid, s) for s in hv.domain_summaries(host_connection(host), entries))
        except hv.HypervisorError:
            continue  # the host went away between the two calls: its rows are left out
    return found


def _owner_names(ids: set[int]) -> dict[int, str]:
    """User id → user name, for the owners of a page's VMs (one query)."""
    if not ids:
        return {}
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))


def vm_get(*, actor: Actor, uuid: str | uuid_mod.UUID, action: VmAction = VmAction.VIEW) -> VirtualMachine:
    """The record of a VM ``actor`` may see (and do ``action`` with); NotFoundError for missing and for not-yours
    alike, PermissionDeniedError for a role too low for ``action``."""
    record = _record(uuid)
    require_vm(actor, record, action)
    return record


def _record(uuid: str | uuid_mod.UUID) -> VirtualMachine:
    try:
        key = uuid_mod.UUID(str(uuid))
    except ValueError:
        raise NotFoundError("No such virtual machine.") from None
    record: VirtualMachine | None = VirtualMachine.objects.select_related("host", "owner").filter(uuid=key).first()
    if record is None:
        raise NotFoundError("No such virtual machine.")
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
    role: VmRole = VmRole.NONE  # the reader's role on it

    @property
    def state(self) -> hv.DomainState:
        return self.info.state


def vm_detail(*, actor: Actor, uuid: str | uuid_mod.UUID) -> VmDetail:
    record = _record(uuid)
    role = require_vm(actor, record, VmAction.VIEW)
    dom = vm_handle(record)
    try:
        xml = dom.xml()
        info = dom.info()
    except hv.DomainNotFound:
        if vm_moving(str(record.uuid)):  # gone from the source between the lookup and the reads: not deleted
            raise ConflictError(f"{record.name} is moving to another host: try again in a moment.",
                                code="migrating") from None
        raise
    doc = hv.DomainDocument.from_xml(xml)
    return VmDetail(record=record, info=info, disks=tuple(d.info() for d in doc.disks),
                    vnc=doc.vnc_display(), has_serial_console=doc.has_serial_console, xml=xml, role=role)


def vm_audience(uuid: str) -> list[int]:
    """The users (besides staff) who may see the VM ``uuid`` and so hear of it: its owner, the users it is shared
    with and the members of the groups it is shared with. One query."""
    key = uuid_mod.UUID(uuid)
    users = get_user_model().objects.filter(
        Q(machines__uuid=key) | Q(vm_shares__vm__uuid=key) | Q(groups__vm_shares__vm__uuid=key), is_active=True)
    return sorted(set(users.values_list("pk", flat=True)))


def host_vm_audiences(host_id: int) -> dict[str, set[int]]:
    """``vm_audience`` of every VM on a host at once: UUID → the active users (besides staff) who may see it
    (owner, users it is shared with, members of groups it is shared with). Three queries, however many VMs; VMs
    without a record or an audience are left out (staff only)."""
    rows = (VirtualMachine.objects.filter(host_id=host_id).annotate(uuid_text=Cast("uuid", CharField()))
            .values_list("pk", "uuid_text", "owner_id", "owner__is_active"))
    uuids: dict[int, str] = {}
    audiences: dict[str, set[int]] = {}
    for pk, text, owner_id, owner_active in rows:
        uuids[pk] = key = _canonical(text)
        audiences[key] = {owner_id} if owner_id is not None and owner_active else set()
    groups: dict[int, list[str]] = {}
    for vm_id, user_id, user_active, group_id in (VmShare.objects.filter(vm__host_id=host_id)
                                                  .values_list("vm_id", "user_id", "user__is_active", "group_id")):
        if vm_id not in uuids:
            continue
        if user_id is not None and user_active:
            audiences[uuids[vm_id]].add(user_id)
        elif group_id is not None:
            groups.setdefault(group_id, []).append(uuids[vm_id])
    if groups:
        members = get_user_model().groups.through.objects.filter(group_id__in=groups, user__is_active=True)
        for group_id, user_id in members.values_list("group_id", "user_id"):
            for key in groups[group_id]:
                audiences[key].add(user_id)
    return {key: users for key, users in audiences.items() if users}


# ------------------------------------------------------------------------------------------------ shares
def _shares_of(user_id: int) -> QuerySet[VmShare]:
    """The shares that reach ``user_id``: their own and their groups'."""
    return VmShare.objects.filter(Q(user_id=user_id) | Q(group__user__id=user_id))


class _Records:
    """Tells the permission module (which imports no models) about VM records and their shares."""

    def role(self, user_id: int, vm: VirtualMachine) -> str | None:
        roles = _shares_of(user_id).filter(vm_id=vm.pk).values_list("role", flat=True)
        return max(roles, key=VmRole.shared, default=None)

    def shared_ids(self, user_id: int) -> QuerySet[VmShare]:
        return _shares_of(user_id).values("vm_id")

    def visible_uuids(self, user_id: int, host_id: int | None) -> set[str]:
        records = VirtualMachine.objects.filter(Q(owner_id=user_id) | Q(pk__in=self.shared_ids(user_id)))
        if host_id is not None:
            records = records.filter(host_id=host_id)
        return {str(u) for u in records.values_list("uuid", flat=True)}


vm_records_provider(_Records())


def vm_shared_roles(actor: Actor) -> dict[int, VmRole]:
    """VM pk → ``actor``'s highest shared role, for every VM shared with them (one query; lists use it)."""
    me = actor_id(actor)
    roles: dict[int, VmRole] = {}
    if me is None:
        return roles
    for vm_id, role in _shares_of(me).values_list("vm_id", "role"):
        roles[vm_id] = max(roles.get(vm_id, VmRole.NONE), VmRole.shared(role))
    return roles


@dataclass(frozen=True)
class ShareRow:
    """One share of a VM, as the Sharing section and the API show it."""

    id: int
    kind: str  # "user" or "group"
    name: str
    role: str
    created_by: str | None
    created: dt.datetime


@dataclass(frozen=True)
class ShareHint:
    """How a VM reaches someone who does not own it: "Shared with you as operator by alice"."""

    role: str
    by: str  # who shared it (else the owner)
    group: str = ""  # the group it reached them through ("" for a share with them)

    def __str__(self) -> str:
        whom = f"your group {self.group}" if self.group else "you"
        return f"Shared with {whom} as {self.role}" + (f" by {self.by}" if self.by else "") + "."


def vm_share_hint(*, actor: Actor, vm: VirtualMachine) -> ShareHint | None:
    """The share that gives ``actor`` their role on ``vm`` (the highest; a direct one before a group's), or None
    for its owner, staff and anyone it is not shared with. One query."""
    me = actor_id(actor)
    if me is None or vm.owner_id == me or is_staff(actor):
        return None
    shares = _shares_of(me).filter(vm=vm).select_related("group", "created_by")
    best = max(shares, key=lambda s: (VmRole.shared(s.role), s.group_id is None), default=None)
    if best is None:
        return None
    by = best.created_by or vm.owner
    return ShareHint(role=best.role, by=by.get_username() if by else "", group=best.group.name if best.group else "")


def vm_shares(*, actor: Actor, vm: VirtualMachine) -> list[ShareRow]:
    """Who ``vm`` is shared with: for its owner and staff (403 for a role below, 404 for who may not see it)."""
    require_vm(actor, vm, VmAction.SHARE)
    shares = VmShare.objects.filter(vm=vm).select_related("user", "group", "created_by").order_by("pk")
    return [ShareRow(id=s.pk, kind="group" if s.group_id else "user",
                     name=s.group.name if s.group else s.user.get_username() if s.user else "",
                     role=s.role, created_by=s.created_by.get_username() if s.created_by else None,
                     created=s.created) for s in shares]


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
            mine = [e for e in hv.domain_entries(conn) if e.uuid in uuids]
            for summary in hv.domain_summaries(conn, mine):
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
    """The VM's latest audit entries (for everyone who may see it) and its jobs that ``actor`` may open (their
    own; staff every job), the rule of the activity page and the jobs pages."""
    require_vm(actor, vm, VmAction.VIEW)
    uuid = str(vm.uuid)
    jobs = list(Job.objects.filter(jobs_visible_q(actor), target_type="vm", target=uuid)
                .select_related("actor")[:limit])
    entries = list(AuditEntry.objects.filter(target_type="vm", target_id=uuid).select_related("actor")
                   .order_by("-pk")[:limit])
    return VmActivity(jobs=jobs, entries=entries)


# ------------------------------------------------------------------------------------------------ activity
@dataclass(frozen=True)
class ActivityFilters:
    vm: str = ""  # a VM's UUID
    action: str = ""  # an action or its start ("vm.", "vm.clone")
    user: str = ""  # the actor's user name
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    ok: bool | None = None


def _when(text: str, field: str, *, end: bool = False) -> dt.datetime | None:
    """``2025-01-31`` (the whole day; ``end``: up to its end) or an ISO date and time; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"{field} must be a date (2025-01-31) or a date and time (2025-01-31T14:00).",
                                  fields={field: ["a date or a date and time"]}) from None
    else:
        moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def parse_activity_filters(params: Mapping[str, str]) -> ActivityFilters:
    """The activity's filters from a query string (the page's and the API's), validated."""
    get = params.get
    vm = (get("vm", "") or "").strip()
    if vm:
        try:
            vm = str(uuid_mod.UUID(vm))
        except ValueError:
            raise ValidationError("vm must be a VM's UUID.", fields={"vm": ["a VM's UUID"]}) from None
    ok_text = (get("ok", "") or "").strip().lower()
    if ok_text not in ("", "true", "false", "1", "0", "yes", "no"):
        raise ValidationError("ok must be true or false.", fields={"ok": ["true or false"]})
    since, until = _when(get("since", "") or "", "since"), _when(get("until", "") or "", "until", end=True)
    if since and until and since > until:
        raise ValidationError("since must come before until.", fields={"until": ["before since"]})
    return ActivityFilters(vm=vm, action=(get("action", "") or "").strip()[:64], user=(get("user", "") or "").strip()[:150],
                           since=since, until=until, ok=None if not ok_text else ok_text in ("true", "1", "yes"))


def activity_list(*, actor: Actor, filters: ActivityFilters | None = None) -> QuerySet[AuditEntry]:
    """The audit entries ``actor`` may read, newest first: staff every entry; everyone else the entries of the
    VMs they may see now (owned or shared) and their own actions. Two queries (the visible VMs, the entries)."""
    entries = AuditEntry.objects.select_related("actor").order_by("-pk")
    me = actor_id(actor)
    if me is None:
        return entries.none()
    visible = vm_uuids_visible(actor)
    if visible is not None:
        entries = entries.filter(Q(actor_id=me) | Q(target_type="vm", target_id__in=sorted(visible)))
    f = filters or ActivityFilters()
    if f.vm:
        entries = entries.filter(target_type="vm", target_id=f.vm)
    if f.action:
        entries = entries.filter(action__startswith=f.action)
    if f.user:
        entries = entries.filter(Q(actor__username=f.user) | Q(actor__isnull=True, actor_name=f.user))
    if f.since:
        entries = entries.filter(created__gte=f.since)
    if f.until:
        entries = entries.filter(created__lte=f.until)
    if f.ok is not None:
        entries = entries.filter(ok=f.ok)
    return entries


def activity_actions() -> list[str]:
    """The actions the audit log knows (for the activity filter's suggestions; no names of anything)."""
    return sorted(set(AuditEntry.objects.values_list("action", flat=True).distinct()))


def activity_vm_choices(*, actor: Actor) -> list[tuple[str, str]]:
    """(uuid, name) of the VMs ``actor`` may see, for the activity page's VM filter (one query)."""
    records = VirtualMachine.objects.filter(vm_visible_q(actor)).order_by("name")
    return [(str(u), n) for u, n in records.values_list("uuid", "name")]


# ------------------------------------------------------------------------------------------------ guest info
@dataclass(frozen=True)
class VmGuest:
    """What the VM's guest agent says (or, without one, the DHCP leases and why the agent gave nothing), and when
    it was read: answers are reused for KVMWEB_GUEST_INFO_SECONDS."""

    info: hv.GuestInfo
    read_at: dt.datetime


GUEST_RETRY_SECONDS = 10  # the VM page asks again this often while a running guest's agent does not answer


def vm_guest_info(*, actor: Actor, vm: VirtualMachine) -> VmGuest:
    """The guest's OS, host name, addresses and file systems (VIEW). The agent is waited for at most
    KVMWEB_GUEST_AGENT_TIMEOUT seconds, and its answer is reused for KVMWEB_GUEST_INFO_SECONDS (whoever asks) while
    the VM stays in the same run: the key holds libvirt's domain id, which the lookup reads anyway and every start
    changes, so a cached answer costs that one call and a VM stopped or restarted is read afresh. Answers that did
    not ask the agent (a VM shut off or paused) are not kept."""
    require_vm(actor, vm, VmAction.VIEW)
    dom = vm_handle(vm)
    run = hv.guest_run_id(dom)
    key = f"kvmweb:guest:{vm.uuid}:{run}"
    cached = cache.get(key) if run is not None else None
    if isinstance(cached, VmGuest):
        return cached
    info = hv.guest_info(dom, timeout_s=settings.KVMWEB_GUEST_AGENT_TIMEOUT)
    result = VmGuest(info=info, read_at=timezone.now())
    # no answer yet (a guest still booting): kept briefly, so the page's retries see the agent soon after it starts
    seconds = settings.KVMWEB_GUEST_INFO_SECONDS if info.agent else min(GUEST_RETRY_SECONDS // 2,
                                                                        settings.KVMWEB_GUEST_INFO_SECONDS)
    if run is not None and info.agent_asked and seconds > 0:
        cache.set(key, result, seconds)
    return result
