"""Every read of the dashboard, the landing page: per host (staff) capacity vs allocated vs used, storage pools, the
busiest VMs, the hypervisor; per person their VMs' states, their quota and their recent jobs.

Costs, per host: ``host_facts`` (capabilities, node info, versions: five calls), the hypervisor's version (one), one
bulk domain listing with vCPUs and memory (``getAllDomainStats``: one call, however many VMs), the pool listing the
storage app uses; the usage figures come from the monitoring store (one Redis round trip for the host, one for its
VMs). A person's VMs: one query for the records they may see (``vm_visible_q``), one bulk listing per host holding
some of them. A host that does not answer is reported with the reason; the others are read as usual.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmRole, actor_id, is_staff, require_staff, vm_visible_q
from kvmweb.accounts.selectors import QuotaSummary, quota_summary
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hosts.services import host_connection
from kvmweb.jobs.models import Job
from kvmweb.jobs.selectors import job_queryset
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import vm_shared_roles
from kvmweb.monitoring import selectors as monitoring
from kvmweb.storage.selectors import pool_list


log = logging.getLogger(__name__)

TOP = 5  # the busiest VMs shown per host and per measure
MY_VMS = 8  # VMs named in a person's short list
RECENT_JOBS = 5


# ------------------------------------------------------------------------------------------------ usage samples
def _value(latest: object, metric: str) -> float | None:
    """One metric of a monitoring sample (an object with the metrics as attributes, or a mapping); None: none."""
    if latest is None:
        return None
    if isinstance(latest, Mapping):
        value = latest.get(metric)
    else:
        value = getattr(latest, metric, None)
        values = getattr(latest, "values", None)
        if value is None and isinstance(values, Mapping):
            value = values.get(metric)
    return float(value) if isinstance(value, int | float) else None


def _latest_vms(uuids: list[str]) -> Mapping[str, object]:
    """The latest sample of each of ``uuids`` that has one (one Redis round trip); nothing when the store does not
    answer: the page shows "—" then, it does not fail."""
    if not uuids:
        return {}
    try:
        found: Mapping[str, object] = monitoring.latest_for(uuids)
        return found
    except Exception:  # the store is an extra: Redis down or not set up must not break the landing page
        log.warning("usage samples unavailable", exc_info=True)
        return {}


def _when(sample: object) -> dt.datetime | None:
    """When a sample was taken (its ``t``, epoch seconds)."""
    t = _value(sample, "t")
    return None if t is None else dt.datetime.fromtimestamp(t, tz=dt.timezone.utc)


def _latest_host(host_id: int) -> object:
    try:
        return monitoring.host_latest(host_id)
    except Exception:  # as above
        log.warning("host usage sample unavailable", exc_info=True)
        return None


# ------------------------------------------------------------------------------------------------ hosts (staff)
@dataclass(frozen=True)
class Figure:
    """A resource of a host: what it has, what its defined VMs may take, what is used now (None: no sample)."""

    capacity: int
    allocated: int  # summed over every defined VM
    allocated_running: int  # over the running ones
    used: float | None = None
    used_pct: float | None = None

    @property
    def allocated_pct(self) -> int:
        return round(100 * self.allocated / self.capacity) if self.capacity else 0

    @property
    def allocated_bar(self) -> int:
        """The allocation for a progress bar (it may be over 100 %: overcommitted)."""
        return min(self.allocated_pct, 100)

    @property
    def overcommitted(self) -> bool:
        return self.allocated > self.capacity


@dataclass(frozen=True)
class TopVm:
    uuid: str
    name: str
    value: float


@dataclass(frozen=True)
class TopList:
    key: str  # "cpu", "memory", "disk", "network"
    title: str
    unit: str  # "pct", "bytes", "rate" (bytes per second)
    vms: tuple[TopVm, ...]


# measure → (title, unit, metrics summed to sort by)
TOP_MEASURES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "cpu": ("CPU", "pct", ("cpu_pct",)),
    "memory": ("Memory", "bytes", ("mem_used_bytes",)),
    "disk": ("Disk I/O", "rate", ("disk_rd_bps", "disk_wr_bps")),
    "network": ("Network", "rate", ("net_rx_bps", "net_tx_bps")),
}


@dataclass(frozen=True)
class HostCard:
    """One host on the staff's dashboard; ``error`` says why a host that does not answer does not."""

    host: Host
    error: str | None = None
    hostname: str = ""
    arch: str = ""
    accel: str = ""  # "KVM" or "TCG": what new guests run on
    kvm_available: bool = False
    hypervisor: str = ""  # "QEMU 7.2.0"
    libvirt_version: str = ""
    vms: int = 0
    states: tuple[tuple[hv.DomainState, int], ...] = ()
    cpus: Figure | None = None  # vCPUs against the host's CPUs; used: CPUs busy
    memory: Figure | None = None  # bytes
    pools: tuple[hv.PoolInfo, ...] = ()
    pools_error: str | None = None
    top: tuple[TopList, ...] = ()
    sampled: dt.datetime | None = None  # when the monitoring store's latest sample of the host was taken

    @property
    def available(self) -> bool:
        return self.error is None

    @property
    def running(self) -> int:
        return sum(n for state, n in self.states if state.is_active)


def _accel(host: Host, facts: hv.HostFacts) -> str:
    """What new guests on ``host`` run on: the host's setting, the site's, else what libvirt offers now."""
    kind = host.domain_type if host.domain_type != Host.DomainType.AUTO else (
        settings.KVMWEB_DOMAIN_TYPE or facts.preferred_domain_type)
    return {"kvm": "KVM", "qemu": "TCG"}.get(kind, kind.upper())


def _states(rows: Iterable[hv.DomainState]) -> tuple[tuple[hv.DomainState, int], ...]:
    """(state, count) for the states that occur, in libvirt's order of states."""
    counts = Counter(rows)
    return tuple((state, counts[state]) for state in hv.DomainState if counts[state])


def _tops(summaries: list[hv.DomainSummary], latest: Mapping[str, object]) -> tuple[TopList, ...]:
    names = {s.uuid: s.name for s in summaries}
    lists = []
    for key, (title, unit, metrics) in TOP_MEASURES.items():
        ranked = []
        for uuid, sample in latest.items():
            values = [_value(sample, m) for m in metrics]
            if uuid in names and any(v is not None for v in values):
                ranked.append(TopVm(uuid=uuid, name=names[uuid], value=sum(v or 0.0 for v in values)))
        ranked.sort(key=lambda t: (-t.value, t.name))
        lists.append(TopList(key=key, title=title, unit=unit, vms=tuple(ranked[:TOP])))
    return tuple(lists)


def host_card(*, actor: Actor, host: Host) -> HostCard:
    """What ``host`` has, what its VMs may take and what they use (see the module's costs)."""
    require_staff(actor, "see the hosts' capacity")
    try:
        conn = host_connection(host)
        facts = hv.host_facts(conn)
        try:
            version = hv.host_hypervisor_version(conn)
        except hv.InvalidRequest:  # a driver that does not tell
            version = ""
        summaries = hv.domain_list(conn)  # vCPUs and maximum memory too: one bulk call
    except hv.HypervisorError as exc:
        return HostCard(host=host, error=exc.detail)
    try:
        pools, pools_error = tuple(row.info for row in pool_list(actor=actor, host=host)), None
    except hv.HypervisorError as exc:
        pools, pools_error = (), exc.detail
    sample = _latest_host(host.pk)
    running = [s for s in summaries if s.state.is_active]
    latest = _latest_vms([s.uuid for s in running])
    cpu_pct = _value(sample, "cpu_pct")
    cpus = Figure(capacity=facts.cpus, allocated=sum(s.vcpus or 0 for s in summaries),
                  allocated_running=sum(s.vcpus or 0 for s in running),
                  used=None if cpu_pct is None else facts.cpus * cpu_pct / 100, used_pct=cpu_pct)
    memory = Figure(capacity=facts.memory_kib * 1024, allocated=sum(s.max_memory_kib or 0 for s in summaries) * 1024,
                    allocated_running=sum(s.max_memory_kib or 0 for s in running) * 1024,
                    used=_value(sample, "mem_used_bytes"), used_pct=_value(sample, "mem_pct"))
    return HostCard(
        host=host, hostname=facts.hostname, arch=facts.arch, accel=_accel(host, facts),
        kvm_available="kvm" in facts.domain_types,
        hypervisor=f"{facts.hypervisor} {version}".strip(), libvirt_version=facts.libvirt_version,
        vms=len(summaries), states=_states(s.state for s in summaries), cpus=cpus, memory=memory,
        pools=pools, pools_error=pools_error, top=_tops(summaries, latest), sampled=_when(sample),
    )


def host_cards(*, actor: Actor) -> list[HostCard]:
    """Every enabled host, by name; those that do not answer say why (the others are read as usual)."""
    require_staff(actor, "see the hosts' capacity")
    return [host_card(actor=actor, host=host) for host in host_queryset()]


# ------------------------------------------------------------------------------------------------ a person's VMs
@dataclass(frozen=True)
class MyVm:
    uuid: str
    name: str
    host: str
    state: hv.DomainState | None  # None: its host did not answer
    role: str = ""  # the role a share gives the reader ("viewer"...); "" for their own
    cpu_pct: float | None = None
    mem_used: float | None = None


@dataclass
class MyVms:
    """The VMs a person may see (owned and shared; staff: every VM with a record), counted by state, and a short
    list of them: running ones first, then by name."""

    total: int = 0
    states: tuple[tuple[hv.DomainState, int], ...] = ()
    rows: list[MyVm] = field(default_factory=list)
    unavailable: list[tuple[str, str]] = field(default_factory=list)  # (host name, why)

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def my_vms(*, actor: Actor, limit: int = MY_VMS) -> MyVms:
    """``actor``'s VMs by state (see :class:`MyVms`): one query for the records (``vm_visible_q``), one for their
    shares, one bulk listing per host holding any, one Redis round trip for the usage of the listed ones."""
    result = MyVms()
    me = actor_id(actor)
    if me is None:
        return result
    records = VirtualMachine.objects.filter(vm_visible_q(actor)).values_list("pk", "uuid", "name", "owner_id",
                                                                            "host_id")
    by_host: dict[int, list[tuple[Any, ...]]] = {}
    for record in records:
        by_host.setdefault(record[4], []).append(record)
    shared = {} if is_staff(actor) or not by_host else vm_shared_roles(actor)
    rows: list[MyVm] = []
    for host in Host.objects.filter(pk__in=list(by_host)):
        live: dict[str, hv.DomainSummary] | None
        try:
            live = {s.uuid: s for s in hv.domain_list(host_connection(host), sizes=False)}
        except hv.HypervisorError as exc:
            result.unavailable.append((host.name, exc.detail))
            live = None
        for pk, uuid, name, owner_id, _host_id in by_host[host.pk]:
            key = str(uuid)
            summary = live.get(key) if live is not None else None
            if live is not None and summary is None:
                continue  # deleted behind the portal's back: the VM list's reconciliation drops the record
            role = "" if owner_id == me or is_staff(actor) else shared.get(pk, VmRole.NONE).label
            rows.append(MyVm(uuid=key, name=summary.name if summary else name, host=host.name,
                             state=summary.state if summary else None, role=role))
    result.total = len(rows)
    result.states = _states(r.state for r in rows if r.state is not None)
    rows.sort(key=lambda r: (not (r.state and r.state.is_active), r.name.lower()))
    shown = rows[:limit]
    latest = _latest_vms([r.uuid for r in shown if r.state and r.state.is_active])
    result.rows = [MyVm(uuid=r.uuid, name=r.name, host=r.host, state=r.state, role=r.role,
                        cpu_pct=_value(latest.get(r.uuid), "cpu_pct"),
                        mem_used=_value(latest.get(r.uuid), "mem_used_bytes")) for r in shown]
    return result


# ------------------------------------------------------------------------------------------------ quota, jobs
@dataclass(frozen=True)
class QuotaLine:
    key: str
    label: str
    limit: int | None
    used: int
    unit: str = ""

    @property
    def pct(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit


_QUOTA_LABELS = {"vms": ("VMs", ""), "vcpus": ("vCPUs", ""), "memory_mib": ("Memory", "MiB"),
                 "disk_gib": ("Disk", "GiB")}


@dataclass(frozen=True)
class MyQuota:
    summary: QuotaSummary
    lines: tuple[QuotaLine, ...]

    @property
    def unlimited(self) -> bool:
        return self.summary.limits.unlimited


def my_quota(*, actor: Actor) -> MyQuota:
    """``actor``'s usage against their quota, read always (also where nothing is limited), as the quota API does."""
    summary = quota_summary(actor, always=True)
    lines = tuple(QuotaLine(key=key, label=_QUOTA_LABELS[key][0], unit=_QUOTA_LABELS[key][1], limit=limit, used=used)
                  for key, limit, used in summary.resources())
    return MyQuota(summary=summary, lines=lines)


def recent_jobs(*, actor: Actor, limit: int = RECENT_JOBS) -> list[Job]:
    """The newest jobs ``actor`` may see (their own; staff everyone's)."""
    return list(job_queryset(actor)[:limit])
