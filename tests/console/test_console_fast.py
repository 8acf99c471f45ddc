"""Console tokens, their checks, and the console pages/API against libvirt's test driver (fast)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from kvmweb import hypervisor as hv
from kvmweb.console import services
from kvmweb.console.models import ConsoleToken
from kvmweb.console.proxy import origin_allowed, session_user
from kvmweb.console.services import ConsoleRefused, console_token_consume, console_token_issue
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from tests.conftest import spec_testdrv

from .conftest import session_cookie


@pytest.fixture
def vnc_vm(test_host, owner):  # type: ignore[no-untyped-def]
    """A running test-driver domain with a VNC display on a loopback port."""
    from kvmweb.machines.services import vm_define, vm_start

    vm = vm_define(actor=owner, host=test_host,
                   doc=spec_testdrv(devices=(hv.Graphics.vnc(listen="address", address="127.0.0.1", port=5999),)))
    vm_start(actor=owner, vm=vm)
    return vm


def _refusal(**kw) -> ConsoleRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(ConsoleRefused) as info:
        console_token_consume(**kw)
    return info.value


def test_token_is_random_hashed_and_short_lived(vnc_vm, owner) -> None:  # type: ignore[no-untyped-def]
    issued = console_token_issue(actor=owner, vm=vnc_vm)
    again = console_token_issue(actor=owner, vm=vnc_vm)
    assert issued.token != again.token and len(issued.token) == 43  # 32 random bytes = 256 bits
    assert services.TOKEN_BYTES * 8 >= 128
    row = ConsoleToken.objects.get(digest=services.token_digest(issued.token))
    assert issued.token not in (row.digest, str(row.pk)) and len(row.digest) == 64
    assert (row.user, row.vm, row.host) == (owner, vnc_vm, vnc_vm.host)
    assert (row.expires_at - row.created) <= dt.timedelta(seconds=30)
    assert issued.path == f"/vnc/{vnc_vm.uuid}?token={issued.token}"


def test_token_is_single_use(vnc_vm, owner) -> None:  # type: ignore[no-untyped-def]
    token = console_token_issue(actor=owner, vm=vnc_vm).token
    grant = console_token_consume(token=token, user=owner, vm_uuid=str(vnc_vm.uuid))
    assert grant.vm == vnc_vm and grant.user == owner
    assert _refusal(token=token, user=owner, vm_uuid=str(vnc_vm.uuid)).close_code == services.CLOSE_TOKEN_USED


def test_token_expires_after_thirty_seconds(vnc_vm, owner) -> None:  # type: ignore[no-untyped-def]
    issued_at = timezone.now()
    token = console_token_issue(actor=owner, vm=vnc_vm, now=issued_at).token
    late = _refusal(token=token, user=owner, vm_uuid=str(vnc_vm.uuid), now=issued_at + dt.timedelta(seconds=31))
    assert late.close_code == services.CLOSE_TOKEN_EXPIRED
    token = console_token_issue(actor=owner, vm=vnc_vm, now=issued_at).token
    console_token_consume(token=token, user=owner, vm_uuid=str(vnc_vm.uuid), now=issued_at + dt.timedelta(seconds=29))


@pytest.mark.parametrize("case,code", [
    ("missing", services.CLOSE_NO_TOKEN), ("malformed", services.CLOSE_BAD_TOKEN), ("unknown", services.CLOSE_BAD_TOKEN),
    ("other_user", services.CLOSE_OTHER_USER), ("anonymous", services.CLOSE_NOT_LOGGED_IN),
    ("other_vm", services.CLOSE_OTHER_VM), ("origin", services.CLOSE_ORIGIN), ("access_lost", services.CLOSE_NO_ACCESS),
])
def test_token_refusals(case: str, code: int, vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    token = console_token_issue(actor=owner, vm=vnc_vm).token
    kw = {"token": token, "user": owner, "vm_uuid": str(vnc_vm.uuid)}
    if case == "missing":
        kw["token"] = None
    elif case == "malformed":
        kw["token"] = "../../etc/passwd"
    elif case == "unknown":
        kw["token"] = "A" * 43
    elif case == "other_user":
        kw["user"] = other_user
    elif case == "anonymous":
        kw["user"] = None
    elif case == "other_vm":
        kw["vm_uuid"] = "00000000-0000-0000-0000-000000000001"
    elif case == "origin":
        kw["origin_ok"] = False
    elif case == "access_lost":
        vnc_vm.owner = other_user
        vnc_vm.save()
    refused = _refusal(**kw)
    assert refused.close_code == code and refused.reason and len(refused.reason.encode()) <= 123
    if case not in ("missing", "malformed", "unknown"):
        assert _refusal(token=token, user=owner, vm_uuid=str(vnc_vm.uuid)).close_code == services.CLOSE_TOKEN_USED


def test_issue_checks_who_asks_and_the_vm(vnc_vm, owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import AnonymousUser

    from kvmweb.machines.services import vm_define, vm_force_off

    with pytest.raises(NotFoundError):
        console_token_issue(actor=other_user, vm=vnc_vm)
    with pytest.raises(PermissionDeniedError, match="Log in"):  # every VM service: login first, then the VM
        console_token_issue(actor=AnonymousUser(), vm=vnc_vm)
    assert console_token_issue(actor=staff, vm=vnc_vm).token  # staff may open any console
    vm_force_off(actor=owner, vm=vnc_vm)
    with pytest.raises(ConflictError, match="shut off"):
        console_token_issue(actor=owner, vm=vnc_vm)
    headless = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    from kvmweb.machines.services import vm_start

    vm_start(actor=owner, vm=headless)
    with pytest.raises(ConflictError, match="no graphical display"):
        console_token_issue(actor=owner, vm=headless)


def test_access_lost_detects_deleted_vm_and_new_owner(vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    pair = (owner.pk, vnc_vm.pk)
    assert services.console_access_lost([pair]) == {}
    vnc_vm.owner = other_user
    vnc_vm.save()
    assert services.console_access_lost([pair])[pair].close_code == services.CLOSE_NO_ACCESS
    vnc_vm.delete()
    assert services.console_access_lost([pair])[pair].close_code == services.CLOSE_VM_GONE


@pytest.mark.parametrize("origin,ok", [
    ("http://127.0.0.1:8000", True), ("http://localhost", True), ("https://[::1]:8443", True),
    ("http://evil.example", False), ("null", False), ("", False), (None, False), ("file://", False),
    ("http://127.0.0.1.evil.example", False),
])
def test_origin_rule(origin, ok, settings) -> None:  # type: ignore[no-untyped-def]
    assert origin_allowed(origin) is ok


def test_origin_trusted_behind_tls_proxy(settings) -> None:  # type: ignore[no-untyped-def]
    settings.CSRF_TRUSTED_ORIGINS = ["https://portal.example.org"]
    assert origin_allowed("https://portal.example.org")
    assert not origin_allowed("https://portal.example.org.evil.example")


def test_session_cookie_gives_the_user(owner, db) -> None:  # type: ignore[no-untyped-def]
    assert session_user(session_cookie(owner)) == owner
    assert session_user("sessionid=forged") is None
    assert session_user(None) is None
    assert session_user("garbage;;==") is None


# ------------------------------------------------------------------------------------------- pages and API
def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_console_pages_and_api_check_who_asks(vnc_vm, owner, other_user, staff, settings) -> None:  # type: ignore[no-untyped-def]
    pages = [f"/console/{vnc_vm.uuid}/", f"/console/{vnc_vm.uuid}/text/", f"/console/{vnc_vm.uuid}/screenshot.png"]
    api = f"/api/v1/vms/{vnc_vm.uuid}/console/token/"
    for url in pages:
        assert _client(None).get(url).status_code == 302
        assert _client(other_user).get(url).status_code == 404
        assert _client(owner).get(url).status_code == 200
        assert _client(staff).get(url).status_code == 200
    assert _client(None).post(api).status_code in (401, 403)
    assert _client(other_user).post(api).json()["error"] == "not_found"
    reply = _client(owner).post(api)
    assert reply.status_code == 200
    body = reply.json()
    port = settings.KVMWEB_CONSOLE_PORT
    assert body["url"].startswith(f"ws://testserver:{port}/vnc/{vnc_vm.uuid}?token=")
    assert body["view_only"] is False and body["expires"]
    row = ConsoleToken.objects.get(digest=services.token_digest(body["url"].rsplit("=", 1)[1]))
    assert not row.api and not row.view_only  # asked with the session: a browser's token (cookie and Origin needed)
    assert _client(owner).get(api).status_code == 405


def test_screenshot_is_png_and_clear_when_shut_off(vnc_vm, owner) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_force_off

    reply = _client(owner).get(f"/console/{vnc_vm.uuid}/screenshot.png")
    assert reply["Content-Type"] == "image/png" and reply.content.startswith(b"\x89PNG")
    vm_force_off(actor=owner, vm=vnc_vm)
    reply = _client(owner).get(f"/console/{vnc_vm.uuid}/screenshot.png")
    assert reply.status_code == 409 and b"shut off" in reply.content


def test_public_url_setting_is_used(vnc_vm, owner, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_CONSOLE_PUBLIC_URL = "wss://portal.example.org/console/"
    body = _client(owner).post(f"/api/v1/vms/{vnc_vm.uuid}/console/token/").json()
    assert body["url"].startswith(f"wss://portal.example.org/console/vnc/{vnc_vm.uuid}?token=")


def test_vm_page_shows_console_section(vnc_vm, owner) -> None:  # type: ignore[no-untyped-def]
    html = _client(owner).get(f"/vms/{vnc_vm.uuid}/").content.decode()
    assert 'id="console-open-inline"' in html and 'id="console-thumbnail"' in html
    page = _client(owner).get(f"/console/{vnc_vm.uuid}/").content.decode()
    assert 'data-token-url="/api/v1/vms/' in page


def test_vm_without_display_gets_a_clear_message(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_define, vm_start

    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    vm_start(actor=owner, vm=vm)
    page = _client(owner).get(f"/console/{vm.uuid}/").content.decode()
    assert "has no graphical display" in page and "console.js" not in page
    assert "has no serial console" in _client(owner).get(f"/console/{vm.uuid}/text/").content.decode()
    section = _client(owner).get(f"/vms/{vm.uuid}/").content.decode()
    assert 'id="console-none"' in section


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
_INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)


def _console_section(html: str) -> str:
    start = html.index('<section id="console-section"')
    return html[start:html.index("</section>", start)]


def test_console_pages_have_no_inline_script(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    """A Content-Security-Policy without 'unsafe-inline' must not break the consoles: their pages and the VM page's
    console section load static modules only and carry no inline event handler."""
    from kvmweb.machines.services import vm_define, vm_start

    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv(devices=(
        hv.Graphics.vnc(listen="address", address="127.0.0.1", port=5998), hv.Serial.pty(), hv.Console.pty())))
    vm_start(actor=owner, vm=vm)
    client = _client(owner)
    vm_page = client.get(f"/vms/{vm.uuid}/").content.decode()
    section = _console_section(vm_page)
    vnc_page = client.get(f"/console/{vm.uuid}/").content.decode()
    text_page = client.get(f"/console/{vm.uuid}/text/").content.decode()
    assert 'id="console-open-text"' in section
    assert '<script type="module" src="/static/console/vm_section.js"></script>' in vm_page
    # The VM page names console.js for the button to import; it loads neither it nor noVNC itself.
    assert 'data-module="/static/console/console.js"' in section and "novnc" not in section
    assert 'src="/static/console/console_page.js"' in vnc_page
    assert 'src="/static/console/terminal_page.js"' in text_page
    for html in (section, vnc_page, text_page):
        assert not _INLINE_SCRIPT.findall(html) and not _INLINE_HANDLER.findall(html)
