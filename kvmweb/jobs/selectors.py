"""Every read about jobs: a user sees their own, staff see everyone's."""
from __future__ import annotations

from collections.abc import Mapping

from django.db.models import QuerySet

from kvmweb.access.permissions import Actor, jobs_visible_q
from kvmweb.core.errors import NotFoundError, ValidationError
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_removal_check

from .models import Job

STATES = [s.value for s in Job.State]


def job_queryset(actor: Actor) -> QuerySet[Job]:
    return Job.objects.select_related("actor", "host").filter(jobs_visible_q(actor))


def parse_job_filters(params: Mapping[str, str]) -> dict[str, str]:
    get = params.get
    state = get("state", "") or ""
    if state and state not in STATES:
        raise ValidationError(f"Unknown state {state!r}; use one of {', '.join(STATES)}.",
                              fields={"state": [f"one of {', '.join(STATES)}"]})
    mine = get("mine", "") or ""
    if mine and mine not in ("1", "true", "0", "false"):
        raise ValidationError("mine must be true or false.", fields={"mine": ["true or false"]})
    return {"state": state, "kind": (get("kind", "") or "")[:64], "target": (get("target", "") or "")[:200],
            "mine": "1" if mine in ("1", "true") else ""}


def job_list(*, actor: Actor, state: str = "", kind: str = "", target: str = "", mine: str = "") -> QuerySet[Job]:
    jobs = job_queryset(actor)
    if state:
        jobs = jobs.filter(state=state)
    if kind:
        jobs = jobs.filter(kind=kind)
    if target:
        jobs = jobs.filter(target=target)
    if mine:
        jobs = jobs.filter(actor_id=getattr(actor, "pk", None))
    return jobs


def job_get(*, actor: Actor, pk: int) -> Job:
    job = job_queryset(actor).filter(pk=pk).first()
    if job is None:
        raise NotFoundError("No such job.")
    return job


def jobs_for_target(*, actor: Actor, target_type: str, target: str, limit: int = 5) -> list[Job]:
    return list(job_queryset(actor).filter(target_type=target_type, target=target)[:limit])


def job_kinds() -> list[str]:
    return sorted(set(Job.objects.values_list("kind", flat=True).distinct()))


def jobs_unfinished_by_target(*, actor: Actor, target_type: str, targets: list[str]) -> dict[str, Job]:
    """The newest unfinished job ``actor`` may see for each of ``targets`` (one query): what each is doing now."""
    found: dict[str, Job] = {}
    jobs = job_queryset(actor).filter(target_type=target_type, target__in=targets, state__in=Job.UNFINISHED)
    for job in jobs.order_by("pk"):
        found[job.target] = job
    return found


@host_removal_check
def _jobs_on_host(host: Host) -> str | None:
    """A host with unfinished jobs is not removed under them."""
    count = Job.objects.filter(host=host, state__in=Job.UNFINISHED).count()
    return f"{count} unfinished job(s) work on it: wait for them or cancel them (Jobs page)." if count else None
