"""Reads of the fleet app: a destination named in a request, what a host's page shows of maintenance, a VM's move."""
from __future__ import annotations

from dataclasses import dataclass

from kvmweb.access.permissions import Actor, is_staff
from kvmweb.core.errors import ValidationError
from kvmweb.hosts.models import Host
from kvmweb.jobs.models import Job
from kvmweb.machines.models import VirtualMachine

from .migration import KIND, migration_job_running
from .placement import Need, Placement, place

ANY = "any"


def host_choice(value: object, *, field: str = "host") -> Host | None:
    """The host a request names (its id or name); None for "any host" (empty, None or ``"any"``)."""
    text = "" if value is None else str(value).strip()
    if text in ("", ANY):
        return None
    host: Host | None = (Host.objects.filter(pk=int(text)).first() if text.isdigit()
                         else Host.objects.filter(name=text).first())
    if host is None:
        raise ValidationError(f"No host {text!r}: give a host's id or name, or \"any\".",
                              fields={field: ["no such host"]})
    return host


@dataclass(frozen=True)
class MoveSection:
    """What the VM page's "Move to another host" part shows."""

    may: bool
    hosts: list[Host]  # possible destinations (every other host; refusals are explained when one is chosen)
    job: Job | None  # the move in progress (or the last one)
    running: bool


def move_section(*, actor: Actor, vm: VirtualMachine, may: bool) -> MoveSection:
    job = Job.objects.filter(kind=KIND, target=str(vm.uuid)).order_by("-pk").first()
    hosts = list(Host.objects.exclude(pk=vm.host_id)) if may else []
    return MoveSection(may=may, hosts=hosts, job=job, running=migration_job_running(vm))


def placement_preview(*, actor: Actor, need: Need) -> Placement | None:
    """Where ``need`` would go now, with every host's verdict (staff only; None for others)."""
    if not is_staff(actor):
        return None
    return place(need=need)
