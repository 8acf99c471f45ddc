from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from kvmweb.access.permissions import Actor

from kvmweb.core.errors import ConflictError, error_reply
from kvmweb.hosts.models import Host

from .selectors import GiB, quota_limits, quota_usage


def admin_ensure(*, username: str, password: str | None) -> tuple[AbstractBaseUser, bool, str | None]:
    """Create the first admin if it does not exist. Returns (user, created, generated password or None).

    An existing account keeps its password unless one is given explicitly.
    """
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    generated = None
    created = user is None
    if user is None:
        if not password:
            password = generated = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
    elif password and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user, created, generated


# ------------------------------------------------------------------------------------------------ host setup
log = logging.getLogger(__name__)

# What ``manage.py bootstrap`` makes sure of on every host, registered by the apps that own it (this app sits below
# them): each step is a service ``step(*, actor, host)`` that returns an object with a ``message``.
HostSetupStep = Callable[..., object]
_HOST_SETUP: dict[str, HostSetupStep] = {}


def host_setup_step(name: str) -> Callable[[HostSetupStep], HostSetupStep]:
    """Register a step of the first-run setup of a host (``@host_setup_step("storage.default_pool")``)."""
    def register(fn: HostSetupStep) -> HostSetupStep:
        _HOST_SETUP[name] = fn
        return fn

    return register


@dataclass(frozen=True)
class SetupOutcome:
    step: str
    ok: bool
    message: str


def host_setup(*, actor: AbstractBaseUser, host: Host) -> list[SetupOutcome]:
    """Run every registered setup step for ``host`` as ``actor`` (staff). A step that fails is reported in words
    and the others still run."""
    outcomes = []
    for name, step in sorted(_HOST_SETUP.items()):
        try:
            result = step(actor=actor, host=host)
        except Exception as exc:  # noqa: BLE001 - setup goes on; the failure is reported
            reply = error_reply(exc)
            if reply is None:
                log.exception("host setup step %s failed on %s", name, host)
            outcomes.append(SetupOutcome(name, False, reply.detail if reply else f"{type(exc).__name__}: {exc}"))
            continue
        outcomes.append(SetupOutcome(name, True, str(getattr(result, "message", result))))
    return outcomes


# ------------------------------------------------------------------------------------------------ quotas
def _gib(n: float) -> str:
    return f"{n:.1f}".rstrip("0").rstrip(".") if n != int(n) else str(int(n))


@contextmanager
def quota_held(actor: Actor, *, fields: dict[str, str] | None = None, **needs: int) -> Iterator[None]:
    """:func:`check_quota` for ``needs``, then the block that makes what was checked, both under the user's quota
    lock: two requests of one user are checked one after the other, the second seeing what the first made (a
    record, or a job's reservation: ``selectors.quota_reservation``). The lock is the transaction: a row lock on
    the user (``select_for_update``) where the database has them (PostgreSQL); SQLite's transactions here take its
    write lock when they begin (``transaction_mode`` IMMEDIATE), which serialises them all. Unlimited users (staff)
    take no lock."""
    with transaction.atomic():
        if not quota_limits(actor).unlimited:
            list(get_user_model().objects.select_for_update().filter(pk=actor.pk).values_list("pk"))
            check_quota(actor, fields=fields, **needs)
        yield


def check_quota(actor: object, *, vms: int = 0, vcpus: int = 0, memory_mib: int = 0, disk_bytes: int = 0,
                fields: dict[str, str] | None = None) -> None:
    """Refuse (ConflictError, code ``quota``, 409) what would take ``actor`` beyond one of their limits; nothing
    for staff or unlimited users. Call it BEFORE making anything. ``fields`` maps a resource (``vms``,
    ``vcpus``, ``memory``, ``disk``) to the form field the refusal belongs to."""
    limits = quota_limits(actor)
    if limits.unlimited or not (vms or vcpus or memory_mib or disk_bytes):
        return
    usage = quota_usage(actor)
    problems: list[tuple[str, str]] = []
    if limits.vms is not None and vms and usage.vms + vms > limits.vms:
        problems.append(("vms", f"Your quota allows {limits.vms} VMs; you have {usage.vms} and this would make "
                                f"{usage.vms + vms}."))
    if limits.vcpus is not None and vcpus and usage.vcpus + vcpus > limits.vcpus:
        problems.append(("vcpus", f"Your quota allows {limits.vcpus} vCPUs; your VMs use {usage.vcpus} and this "
                                  f"one needs {vcpus}."))
    if limits.memory_mib is not None and memory_mib and usage.memory_mib + memory_mib > limits.memory_mib:
        problems.append(("memory", f"Your quota allows {limits.memory_mib} MiB of memory; your VMs use "
                                   f"{usage.memory_mib} MiB and this one needs {memory_mib} MiB."))
    if limits.disk_gib is not None and disk_bytes and usage.disk_bytes + disk_bytes > limits.disk_gib * GiB:
        problems.append(("disk", f"Your quota allows {limits.disk_gib} GiB of disk; your volumes use "
                                 f"{_gib(usage.disk_bytes / GiB)} GiB and this needs {_gib(disk_bytes / GiB)} GiB."))
    if not problems:
        return
    if usage.unavailable:
        problems[-1] = (problems[-1][0], problems[-1][1] + f" (VMs on {', '.join(usage.unavailable)}, which did not "
                                                           "answer, count 0 vCPUs and memory.)")
    names = fields or {}
    field_errors: dict[str, list[str]] = {}
    for resource, message in problems:
        field_errors.setdefault(names.get(resource, resource), []).append(message)
    raise ConflictError(" ".join(m for _r, m in problems), code="quota", fields=field_errors)
