"""The console proxy against a real guest: the happy path, every refusal (raw websocket client), the watchdog,
50 concurrent sessions without leaked file descriptors, and no VNC TCP port for a listen='none' guest."""
from __future__ import annotations

import datetime as dt
import subprocess
import threading
import time

import pytest
from django.utils import timezone

from kvmweb.console import services
from kvmweb.console.models import ConsoleSession, ConsoleToken
from kvmweb.console.services import console_token_issue
from tests.conftest import virsh

from .conftest import session_cookie
from .wsclient import attempt, open_ws

pytestmark = [pytest.mark.real]


def _url(proxy, vm, token: str) -> str:  # type: ignore[no-untyped-def]
    return proxy.url(f"/vnc/{vm.uuid}?token={token}")


def _wait_closed(ws, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Read until the proxy closes; returns the close frame it sent."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            return closed.rcvd
        except TimeoutError:
            break
    raise AssertionError("the proxy did not close the session in time")


def test_console_reaches_listen_none_guest_without_tcp_port(console_proxy, running_memtest, owner) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    xml = virsh("dumpxml", vm.name)
    assert "<listen type='none'/>" in xml and "port=" not in xml.split("<graphics", 1)[1].split(">", 1)[0]
    pid = open(f"/run/libvirt/qemu/{vm.name}.pid").read().strip()
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    assert f"pid={pid}," not in listening, f"QEMU of {vm.name} listens on TCP:\n{listening}"
    assert virsh("vncdisplay", vm.name, check=False).strip() == ""

    issued = console_token_issue(actor=owner, vm=vm)
    assert not ConsoleToken.objects.filter(digest=issued.token).exists()  # only the hash is stored
    with open_ws(_url(console_proxy, vm, issued.token), cookie=session_cookie(owner)) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"
        deadline = time.monotonic() + 10  # the session row is written while the first bytes already flow
        while not ConsoleSession.objects.filter(vm=vm, user=owner, ended__isnull=True).exists():
            assert time.monotonic() < deadline, "no open ConsoleSession row"
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while ConsoleSession.objects.filter(vm=vm, ended__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    record = ConsoleSession.objects.get(vm=vm)
    assert record.ended is not None and record.client.startswith("127.0.0.1")
    from kvmweb.audit.models import AuditEntry

    actions = set(AuditEntry.objects.filter(target__contains=str(vm.uuid)).values_list("action", flat=True))
    assert {"console.vnc.open", "console.vnc.close"} <= actions


REFUSALS = ["unknown", "forged", "reused", "expired", "other_user", "other_vm", "wrong_origin", "no_origin",
            "no_session", "shut_off", "missing"]


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals(case: str, console_proxy, running_memtest, owner, other_user, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    cookie = session_cookie(owner)
    origin = "http://127.0.0.1:8000"
    token = console_token_issue(actor=owner, vm=vm).token
    url = _url(console_proxy, vm, token)
    expected: tuple[int, str]
    if case == "unknown":
        url = _url(console_proxy, vm, "x" * 43)
        expected = (services.CLOSE_BAD_TOKEN, "Unknown console token")
    elif case == "forged":
        url = _url(console_proxy, vm, "not-a-token'><script>")
        expected = (services.CLOSE_BAD_TOKEN, "Invalid console token")
    elif case == "missing":
        url = console_proxy.url(f"/vnc/{vm.uuid}")
        expected = (services.CLOSE_NO_TOKEN, "No console token")
    elif case == "reused":
        assert attempt(url, cookie=cookie).banner == b"RFB 003.008\n"
        expected = (services.CLOSE_TOKEN_USED, "already used")
    elif case == "expired":
        # Time is controlled, not slept: the token is issued 31 s in the past (TTL is 30 s).
        token = console_token_issue(actor=owner, vm=vm, now=timezone.now() - dt.timedelta(seconds=31)).token
        url = _url(console_proxy, vm, token)
        expected = (services.CLOSE_TOKEN_EXPIRED, "expired")
    elif case == "other_user":
        cookie = session_cookie(other_user)  # bob presents alice's token
        expected = (services.CLOSE_OTHER_USER, "belongs to another user")
    elif case == "other_vm":
        from tests.conftest import memtest_spec

        second = real_vm(memtest_spec())  # defined, never started: no second TCG guest runs
        url = _url(console_proxy, second, token)
        expected = (services.CLOSE_OTHER_VM, "for another virtual machine")
    elif case == "wrong_origin":
        origin = "http://evil.example"
        expected = (services.CLOSE_ORIGIN, "Origin not allowed")
    elif case == "no_origin":
        origin = None
        expected = (services.CLOSE_ORIGIN, "Origin not allowed")
    elif case == "no_session":
        cookie = None
        expected = (services.CLOSE_NOT_LOGGED_IN, "Not logged in")
    elif case == "shut_off":
        virsh("destroy", vm.name)
        expected = (services.CLOSE_NOT_RUNNING, "is not running")
    outcome = attempt(url, cookie=cookie, origin=origin)
    assert outcome.banner is None, f"{case}: the proxy let the connection through"
    assert outcome.code == expected[0], (case, outcome)
    assert expected[1] in outcome.reason, (case, outcome)
    # A refused attempt burns the token: it cannot be retried with the right cookie/origin afterwards.
    if case in ("other_user", "wrong_origin", "no_session"):
        assert attempt(url, cookie=session_cookie(owner)).code == services.CLOSE_TOKEN_USED
    # The proxy keeps serving: a fresh token still works (when the guest runs).
    if case != "shut_off":
        fresh = console_token_issue(actor=owner, vm=vm).token
        assert attempt(_url(console_proxy, vm, fresh), cookie=session_cookie(owner)).banner == b"RFB 003.008\n"


def test_watchdog_ends_session_when_access_is_lost(console_proxy, running_memtest, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    with open_ws(_url(console_proxy, vm, console_token_issue(actor=owner, vm=vm).token),
                 cookie=session_cookie(owner)) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"
        vm.owner = other_user
        vm.save(update_fields=["owner"])
        close = _wait_closed(ws)
    assert close.code == services.CLOSE_NO_ACCESS and "no longer have access" in close.reason


def test_watchdog_ends_session_when_vm_is_deleted(console_proxy, running_memtest, owner) -> None:  # type: ignore[no-untyped-def]
    """The portal forgets the VM while its console is open (its record goes): the session ends with that reason.

    (The portal only deletes shut-off VMs, whose display is gone anyway; removing the record while the guest still
    runs isolates the watchdog.)"""
    from kvmweb.machines.models import VirtualMachine

    vm = running_memtest
    with open_ws(_url(console_proxy, vm, console_token_issue(actor=owner, vm=vm).token),
                 cookie=session_cookie(owner)) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"
        VirtualMachine.objects.filter(pk=vm.pk).delete()
        close = _wait_closed(ws)
    assert close.code == services.CLOSE_VM_GONE and "deleted" in close.reason, close


def test_session_ends_with_reason_when_guest_stops(console_proxy, running_memtest, owner) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    with open_ws(_url(console_proxy, vm, console_token_issue(actor=owner, vm=vm).token),
                 cookie=session_cookie(owner)) as ws:
        assert ws.recv(timeout=10) == b"RFB 003.008\n"
        virsh("destroy", vm.name)
        close = _wait_closed(ws)
    assert close.code == services.CLOSE_DISPLAY_CLOSED and "display closed" in close.reason, close


def test_fifty_concurrent_sessions_leak_no_fds(console_proxy, running_memtest, owner) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    cookie = session_cookie(owner)
    warm = console_token_issue(actor=owner, vm=vm).token
    assert attempt(_url(console_proxy, vm, warm), cookie=cookie).banner == b"RFB 003.008\n"
    time.sleep(0.5)  # let the warm-up session's thread finish before counting
    before = console_proxy.fd_count()
    tokens = [console_token_issue(actor=owner, vm=vm).token for _ in range(50)]
    results: list[bytes | None] = [None] * 50
    opened = threading.Barrier(50, timeout=60)

    def session(i: int) -> None:
        with open_ws(_url(console_proxy, vm, tokens[i]), cookie=cookie) as ws:
            results[i] = ws.recv(timeout=30)
            opened.wait()  # all 50 are open at the same time before any closes

    threads = [threading.Thread(target=session, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert results == [b"RFB 003.008\n"] * 50
    deadline = time.monotonic() + 15
    while console_proxy.fd_count() > before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert console_proxy.fd_count() <= before, "the proxy leaked file descriptors"
    assert console_proxy.proc.poll() is None


def test_garbage_does_not_hurt_the_proxy(console_proxy) -> None:  # type: ignore[no-untyped-def]
    import socket

    for payload in (b"\x00\xff" * 100, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /vnc/x HTTP/1.1\r\n\r\n",
                    b"GET /vnc/00000000-0000-0000-0000-000000000000?token=a HTTP/1.1\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", console_proxy.port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(4096)
            except OSError:
                pass
    outcome = attempt(console_proxy.url("/vnc/00000000-0000-0000-0000-000000000000?token=" + "A" * 43))
    assert outcome.code == services.CLOSE_BAD_TOKEN  # still serving, still answering with reasons
    assert console_proxy.proc.poll() is None
