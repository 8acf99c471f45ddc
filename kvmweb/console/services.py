"""Console tokens and sessions: issue a one-time token after a permission check, consume it in the proxy (checking
everything again), and record each session in the audit trail."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import socket
import uuid as uuid_mod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, vm_may
from kvmweb.audit.services import audit_record, audited
from kvmweb.core.errors import ConflictError, NotFoundError
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.handles import vm_handle
from kvmweb.machines.services import vm_checked

from .models import ConsoleSession, ConsoleToken
from .selectors import console_view_only

TOKEN_BYTES = 32  # 256 bits of randomness
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    path: str  # the proxy path to open: /vnc/<uuid>?token=...
    expires_at: dt.datetime
    view_only: bool  # the proxy will pass no keyboard or mouse input


def console_token_issue(*, actor: Actor, vm: VirtualMachine, api: bool = False,
                        now: dt.datetime | None = None) -> IssuedToken:
    """A one-time token for ``actor`` to open ``vm``'s graphical console through the proxy within the TTL.

    Whoever may see the VM gets one; it is view-only for those who may not operate it. ``api``: for a client
    without the portal's session cookie (an API token authenticated the request); the proxy then accepts it
    without a cookie and without an Origin header. Refused (409) when the VM does not run or has no display.
    ``now`` exists for tests that control time.
    """
    dom = vm_checked(actor, vm, VmAction.VIEW)
    if not dom.state().is_active:
        raise ConflictError(f"{vm.name} is shut off: start it to use its console.", code="not_running")
    if dom.document().vnc_display() is None:
        raise ConflictError(f"{vm.name} has no graphical display (VNC).", code="no_graphics")
    now = now or timezone.now()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now + dt.timedelta(seconds=settings.KVMWEB_CONSOLE_TOKEN_TTL)
    ConsoleToken.objects.filter(expires_at__lt=timezone.now() - dt.timedelta(minutes=10)).delete()
    view_only = console_view_only(actor, vm)
    ConsoleToken.objects.create(
        digest=token_digest(token), user=actor, vm=vm, host=vm.host, created=now, expires_at=expires,
        view_only=view_only, api=api,
    )
    return IssuedToken(token=token, path=f"/vnc/{vm.uuid}?token={token}", expires_at=expires, view_only=view_only)


# ------------------------------------------------------------------------------------------------ the proxy's side
class ConsoleRefused(Exception):
    """Why the proxy refuses a connection: a websocket close code (4000-4999) and a reason the page shows."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason[:120]  # a close frame's reason must fit in 123 bytes


# Close codes the proxy (and the text console) use; the page decides from them whether reconnecting can help.
CLOSE_NO_TOKEN = 4001
CLOSE_BAD_TOKEN = 4002
CLOSE_TOKEN_USED = 4003
CLOSE_TOKEN_EXPIRED = 4004
CLOSE_NOT_LOGGED_IN = 4005
CLOSE_OTHER_USER = 4006
CLOSE_OTHER_VM = 4007
CLOSE_ORIGIN = 4008
CLOSE_NO_ACCESS = 4009
CLOSE_VM_GONE = 4010
CLOSE_NOT_RUNNING = 4011
CLOSE_NO_GRAPHICS = 4012
CLOSE_HOST = 4013
CLOSE_VIEW_ONLY = 4014  # a view-only client sent something the proxy does not pass and cannot skip
CLOSE_ROLE_CHANGED = 4015  # the user may still watch, no longer type: reconnecting gives a view-only console
CLOSE_DISPLAY_CLOSED = 4100  # the guest's display went away (power-off, reboot): reconnecting may help
ORIGIN_REFUSED = "Websocket Origin not allowed: open the console from the portal."


@dataclass
class ConsoleGrant:
    user: AbstractBaseUser
    vm: VirtualMachine
    view_only: bool = False


def console_token_consume(
    *, token: str | None, user: AbstractBaseUser | None, vm_uuid: str, origin_ok: bool | None = True,
    now: dt.datetime | None = None,
) -> ConsoleGrant:
    """Check a token presented to the proxy and use it up. Raises ConsoleRefused with the reason.

    ``user`` is the user of the session cookie sent along, if any; ``origin_ok`` whether the ``Origin`` header is
    allowed, None when there was none (not a browser: only tokens issued to API clients are accepted then).
    Order matters: the token is burnt before anything else is checked, so a refused attempt cannot be retried.
    The session is view-only when the token says so or when the user may no longer operate the VM.
    """
    now = now or timezone.now()
    if not token:
        if origin_ok is False:
            raise ConsoleRefused(CLOSE_ORIGIN, ORIGIN_REFUSED)
        raise ConsoleRefused(CLOSE_NO_TOKEN, "No console token: open the console from the VM's page.")
    if not _TOKEN_RE.match(token):
        if origin_ok is False:
            raise ConsoleRefused(CLOSE_ORIGIN, ORIGIN_REFUSED)
        raise ConsoleRefused(CLOSE_BAD_TOKEN, "Invalid console token.")
    digest = token_digest(token)
    with transaction.atomic():
        burnt = ConsoleToken.objects.filter(digest=digest, used_at__isnull=True).update(used_at=now)
        row = ConsoleToken.objects.select_related("vm", "vm__host", "user").filter(digest=digest).first()
    # After burning: a token presented from a foreign page is gone. A client that sends no Origin is no browser
    # (browsers always send one with a websocket): only a token issued to an API client is accepted from it.
    if origin_ok is False or (origin_ok is None and row is not None and not row.api):
        raise ConsoleRefused(CLOSE_ORIGIN, ORIGIN_REFUSED)
    if row is None:
        raise ConsoleRefused(CLOSE_BAD_TOKEN, "Unknown console token.")
    if not burnt:
        raise ConsoleRefused(CLOSE_TOKEN_USED, "This console token was already used: reload the console.")
    if row.expires_at < now:
        raise ConsoleRefused(CLOSE_TOKEN_EXPIRED, "This console token expired: reload the console.")
    if user is None and row.api:
        user = row.user  # an API client's token stands for its user; a session cookie, if sent, must agree
    elif user is None or not user.is_active:
        raise ConsoleRefused(CLOSE_NOT_LOGGED_IN, "Not logged in to the portal (no valid session).")
    if row.user_id != user.pk:
        raise ConsoleRefused(CLOSE_OTHER_USER, "This console token belongs to another user.")
    if str(row.vm.uuid) != vm_uuid.lower():
        raise ConsoleRefused(CLOSE_OTHER_VM, "This console token is for another virtual machine.")
    if row.host_id != row.vm.host_id:
        raise ConsoleRefused(CLOSE_OTHER_VM, "This virtual machine moved to another host: reload the console.")
    if not vm_may(user, row.vm, VmAction.VIEW):
        raise ConsoleRefused(CLOSE_NO_ACCESS, "You no longer have access to this virtual machine.")
    return ConsoleGrant(user=user, vm=row.vm, view_only=row.view_only or console_view_only(user, row.vm))


def console_domain(vm: VirtualMachine) -> hv.Domain:
    """The VM's libvirt handle at connect time, refusals as ConsoleRefused (libvirt only: no database write)."""
    try:
        dom = vm_handle(vm)
    except NotFoundError as exc:
        raise ConsoleRefused(CLOSE_VM_GONE, exc.detail) from None
    except hv.HostUnavailable as exc:
        raise ConsoleRefused(CLOSE_HOST, f"The host does not answer: {exc.detail}") from None
    return dom


def console_open_display(vm: VirtualMachine) -> socket.socket:
    """The VM's display as a socket, resolved now (never from a stored port); refusals as ConsoleRefused. Makes
    libvirt calls only (no database), so the proxy runs it in its own thread."""
    dom = console_domain(vm)
    try:
        return dom.open_vnc_socket()
    except hv.NoGraphics as exc:
        raise ConsoleRefused(CLOSE_NO_GRAPHICS, exc.detail) from None
    except hv.OperationInvalid as exc:
        raise ConsoleRefused(CLOSE_NOT_RUNNING, f"{dom.name} is not running (shut off).") from exc
    except hv.DomainNotFound:
        raise ConsoleRefused(CLOSE_VM_GONE, f"{dom.name} no longer exists.") from None
    except hv.HypervisorError as exc:
        raise ConsoleRefused(CLOSE_HOST, exc.detail) from None


def console_access_lost(sessions: list[tuple[int, int]], *, operating: Collection[tuple[int, int]] = (),
                        ) -> dict[tuple[int, int], ConsoleRefused]:
    """For (user id, vm id) pairs of live sessions, the ones that must end now and why (two queries in all).

    ``operating``: the pairs whose sessions pass input; they also end when the user may still see the VM but no
    longer operate it (reconnecting then gives a view-only console)."""
    if not sessions:
        return {}
    vms = {vm.pk: vm for vm in VirtualMachine.objects.filter(pk__in={v for _u, v in sessions})}
    users = {u.pk: u for u in get_user_model().objects.filter(pk__in={u for u, _v in sessions})}
    lost: dict[tuple[int, int], ConsoleRefused] = {}
    for user_id, vm_id in sessions:
        vm = vms.get(vm_id)
        user = users.get(user_id)
        if vm is None:
            lost[(user_id, vm_id)] = ConsoleRefused(CLOSE_VM_GONE, "The virtual machine was deleted.")
        elif user is None or not user.is_active or not vm_may(user, vm, VmAction.VIEW):
            lost[(user_id, vm_id)] = ConsoleRefused(CLOSE_NO_ACCESS, "You no longer have access to this virtual machine.")
        elif (user_id, vm_id) in operating and console_view_only(user, vm):
            lost[(user_id, vm_id)] = ConsoleRefused(CLOSE_ROLE_CHANGED, "You may now only watch this virtual machine.")
    return lost


def console_vms_gone(vm_ids: set[int]) -> set[int]:
    """Which of these VMs' domains were undefined outside the portal (one lookup each; a host that does not answer
    keeps its sessions)."""
    gone = set()
    for vm in VirtualMachine.objects.select_related("host").filter(pk__in=vm_ids):
        try:
            vm_handle(vm)
        except NotFoundError:
            gone.add(vm.pk)
        except hv.HypervisorError:
            continue
    return gone


def console_refusal_audit(*, user: AbstractBaseUser | None, vm_uuid: str, client: str, reason: str) -> None:
    audit_record(actor=user, action="console.refused", target_type="vm", target=vm_uuid, ok=False,
                 detail=f"from {client}: {reason}")


def console_session_start(*, user: AbstractBaseUser, vm: VirtualMachine, client: str, kind: str = "vnc",
                          view_only: bool = False) -> ConsoleSession:
    with transaction.atomic(), audited(actor=user, action=f"console.{kind}.open", target_type="vm",
                                       target=f"{vm.name} {vm.uuid}", host=vm.host.uri) as notes:
        notes.append(f"from {client}" + (", view only" if view_only else ""))
        return ConsoleSession.objects.create(
            user=user, vm=vm, vm_name=vm.name, vm_uuid=vm.uuid, host_name=vm.host.name, kind=kind, client=client[:200],
            view_only=view_only,
        )


def console_session_end(*, session: ConsoleSession, reason: str) -> None:
    session.ended = timezone.now()
    session.end_reason = reason[:200]
    seconds = (session.ended - session.started).total_seconds()
    with transaction.atomic():
        session.save(update_fields=["ended", "end_reason"])
        audit_record(actor=session.user, action=f"console.{session.kind}.close", target_type="vm",
                     target=f"{session.vm_name} {session.vm_uuid}", host=session.host_name,
                     detail=f"from {session.client}, {seconds:.1f} s: {reason}")


class ConsoleStream(Protocol):
    """An open text console: keystrokes go in with ``write``; ``close`` ends it."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class ConsoleInUse(ConsoleRefused):
    """The VM's text console is open in another session (libvirt allows one stream)."""


TAKEN_OVER = "Someone who may type opened this text console: a view-only session gives way."


def console_serial_open(vm: VirtualMachine, on_data: Callable[[bytes], None],
                        on_close: Callable[[str], None], *, force: bool = False) -> ConsoleStream:
    """The VM's serial console as a stream, refusals as ConsoleRefused (for the text-console websocket).
    ``force`` ends the stream open elsewhere (see :func:`console_serial_take_over`)."""
    dom = console_domain(vm)
    try:
        return dom.open_serial_console(on_data, on_close, force=force)
    except hv.ConsoleBusy as exc:
        raise ConsoleInUse(CLOSE_HOST, exc.detail) from None
    except hv.NoSerialConsole as exc:
        raise ConsoleRefused(CLOSE_NO_GRAPHICS, exc.detail) from None
    except hv.DomainNotRunning as exc:
        raise ConsoleRefused(CLOSE_NOT_RUNNING, exc.detail) from None
    except hv.HypervisorError as exc:
        raise ConsoleRefused(CLOSE_HOST, exc.detail) from None


def _taken_over_key(vm_uuid: object) -> str:
    return f"kvmweb:console-serial-taken-over:{vm_uuid}"


def console_serial_take_over(*, vm: VirtualMachine) -> bool:
    """Whether the text console, found open elsewhere, may be taken over by someone who may type: only when every
    session holding it is view-only (a viewer must not keep an operator out). The viewer's session then learns why
    its stream ended from :func:`console_serial_taken_over` (a short-lived cache entry: the web process's cache)."""
    holding = ConsoleSession.objects.filter(vm=vm, kind="serial", ended__isnull=True)
    if not holding.exists() or holding.filter(view_only=False).exists():
        return False
    cache.set(_taken_over_key(vm.uuid), True, 30)
    return True


def console_serial_taken_over(*, vm_uuid: object) -> bool:
    """Whether a view-only text console's stream just ended because someone who may type took it over (once)."""
    key = _taken_over_key(vm_uuid)
    taken = cache.get(key) is not None
    cache.delete(key)
    return taken


def valid_uuid(value: str) -> bool:
    try:
        uuid_mod.UUID(value)
    except ValueError:
        return False
    return True
