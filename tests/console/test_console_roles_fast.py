"""Console tokens for viewers and for API clients, against libvirt's test driver (fast): who gets a view-only token,
the re-check when the socket connects, tokens issued to API clients (no session cookie, no Origin), the watchdog's
rule for a role that changes while the console is open, and what the pages say to a viewer."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.console import services
from kvmweb.console.models import ConsoleToken
from kvmweb.console.services import ConsoleRefused, console_access_lost, console_token_consume, console_token_issue
from tests.conftest import spec_testdrv

from .conftest import api_client


@pytest.fixture
def vnc_vm(test_host, owner):  # type: ignore[no-untyped-def]
    """A running test-driver domain with a VNC display (on a loopback port) and a serial console."""
    from kvmweb.machines.services import vm_define, vm_start

    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv(devices=(
        hv.Graphics.vnc(listen="address", address="127.0.0.1", port=5997), hv.Serial.pty(), hv.Console.pty())))
    vm_start(actor=owner, vm=vm)
    return vm


def _share(owner, vm, user, role: str) -> int:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_share

    return vm_share(actor=owner, vm=vm, user=user, role=role).share_id


def _consume(token: str, vm, **kw):  # type: ignore[no-untyped-def]
    return console_token_consume(token=token, vm_uuid=str(vm.uuid), **kw)


def _refusal(token: str, vm, **kw) -> ConsoleRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(ConsoleRefused) as info:
        _consume(token, vm, **kw)
    return info.value


def _token_of(body: dict) -> str:  # type: ignore[type-arg]
    return str(body["url"].rsplit("token=", 1)[1])


# ------------------------------------------------------------------------------------------- viewers
def test_viewer_gets_a_view_only_token_operator_and_owner_do_not(vnc_vm, owner, other_user, staff,
                                                                 django_user_model) -> None:  # type: ignore[no-untyped-def]
    carol = django_user_model.objects.create_user(username="carol", password="carol-pass-123")
    _share(owner, vnc_vm, other_user, "viewer")
    _share(owner, vnc_vm, carol, "operator")
    assert console_token_issue(actor=other_user, vm=vnc_vm).view_only is True
    assert console_token_issue(actor=carol, vm=vnc_vm).view_only is False
    assert console_token_issue(actor=owner, vm=vnc_vm).view_only is False
    assert console_token_issue(actor=staff, vm=vnc_vm).view_only is False
    token = console_token_issue(actor=other_user, vm=vnc_vm).token
    assert ConsoleToken.objects.get(digest=services.token_digest(token)).view_only
    grant = _consume(token, vnc_vm, user=other_user)
    assert grant.view_only and grant.user == other_user
    assert _consume(console_token_issue(actor=carol, vm=vnc_vm).token, vnc_vm, user=carol).view_only is False


def test_role_is_checked_again_when_the_socket_connects(vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_share_update, vm_unshare

    share = _share(owner, vnc_vm, other_user, "operator")
    # Shared as operator when the token was issued, demoted to viewer before connecting: view-only.
    token = console_token_issue(actor=other_user, vm=vnc_vm)
    assert not token.view_only
    vm_share_update(actor=owner, vm=vnc_vm, share_id=share, role="viewer")
    assert _consume(token.token, vnc_vm, user=other_user).view_only
    # Promoted after a view-only token was issued: the token's terms hold (the next token is the operator's).
    token = console_token_issue(actor=other_user, vm=vnc_vm)
    vm_share_update(actor=owner, vm=vnc_vm, share_id=share, role="operator")
    assert _consume(token.token, vnc_vm, user=other_user).view_only
    # The share removed between issue and connect: refused.
    token = console_token_issue(actor=other_user, vm=vnc_vm)
    vm_unshare(actor=owner, vm=vnc_vm, share_id=share)
    assert _refusal(token.token, vnc_vm, user=other_user).close_code == services.CLOSE_NO_ACCESS


def test_watchdog_ends_an_operators_session_when_they_become_a_viewer(vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_share_update, vm_unshare

    share = _share(owner, vnc_vm, other_user, "operator")
    pair = (other_user.pk, vnc_vm.pk)
    assert console_access_lost([pair], operating=[pair]) == {}
    vm_share_update(actor=owner, vm=vnc_vm, share_id=share, role="viewer")
    assert console_access_lost([pair]) == {}  # a view-only session goes on
    why = console_access_lost([pair], operating=[pair])[pair]
    assert why.close_code == services.CLOSE_ROLE_CHANGED and "only watch" in why.reason
    vm_unshare(actor=owner, vm=vnc_vm, share_id=share)
    assert console_access_lost([pair])[pair].close_code == services.CLOSE_NO_ACCESS


def test_pages_tell_a_viewer_it_is_view_only(vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    _share(owner, vnc_vm, other_user, "viewer")
    viewer, mine = Client(), Client()
    viewer.force_login(other_user)
    mine.force_login(owner)
    text = viewer.get(f"/console/{vnc_vm.uuid}/text/").content.decode()
    assert "data-view-only" in text and ">View only<" in text
    own_text = mine.get(f"/console/{vnc_vm.uuid}/text/").content.decode()
    assert "data-view-only" not in own_text and ">View only<" not in own_text
    # The graphical console learns it from the token (the badge is hidden until then; the input controls marked).
    page = viewer.get(f"/console/{vnc_vm.uuid}/").content.decode()
    assert page.count("data-input") == 3 and "console-viewonly" in page
    body = viewer.post(f"/api/v1/vms/{vnc_vm.uuid}/console/token/").json()
    assert body["view_only"] is True
    assert mine.post(f"/api/v1/vms/{vnc_vm.uuid}/console/token/").json()["view_only"] is False


# ------------------------------------------------------------------------------------------- API clients
def test_api_client_gets_a_url_usable_without_cookie_or_origin(vnc_vm, owner, other_user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_CONSOLE_TOKEN_TTL = 30
    reply = api_client(owner).post(f"/api/v1/vms/{vnc_vm.uuid}/console/token/")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert set(body) == {"url", "expires", "view_only"} and body["view_only"] is False
    assert body["url"].startswith(f"ws://testserver:{settings.KVMWEB_CONSOLE_PORT}/vnc/{vnc_vm.uuid}?token=")
    token = _token_of(body)
    row = ConsoleToken.objects.get(digest=services.token_digest(token))
    assert row.api and row.user == owner and token not in (row.digest,)  # stored hashed
    assert (row.expires_at - row.created).total_seconds() <= 30
    grant = _consume(token, vnc_vm, user=None, origin_ok=None)  # no cookie, no Origin: the token's user
    assert grant.user == owner and not grant.view_only
    assert _refusal(token, vnc_vm, user=None, origin_ok=None).close_code == services.CLOSE_TOKEN_USED


def test_api_token_rules(vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/vms/{vnc_vm.uuid}/console/token/"

    def issued() -> str:
        return _token_of(api_client(owner).post(url).json())

    # A browser that carries an Origin keeps the Origin rule; a session cookie, if sent, must be the token's user.
    assert _refusal(issued(), vnc_vm, user=None, origin_ok=False).close_code == services.CLOSE_ORIGIN
    assert _refusal(issued(), vnc_vm, user=other_user, origin_ok=None).close_code == services.CLOSE_OTHER_USER
    assert _consume(issued(), vnc_vm, user=owner, origin_ok=True).user == owner
    # A browser's token (asked with the session) still needs the cookie and an Origin.
    browser = console_token_issue(actor=owner, vm=vnc_vm).token
    assert _refusal(browser, vnc_vm, user=owner, origin_ok=None).close_code == services.CLOSE_ORIGIN
    browser = console_token_issue(actor=owner, vm=vnc_vm).token
    assert _refusal(browser, vnc_vm, user=None, origin_ok=True).close_code == services.CLOSE_NOT_LOGGED_IN
    # A mistyped token from a client without Origin is named as such.
    assert _refusal("A" * 43, vnc_vm, user=None, origin_ok=None).close_code == services.CLOSE_BAD_TOKEN
    # Another user's API token: the VM does not exist for them.
    reply = api_client(other_user).post(url)
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    # A deactivated user's API token, issued before: refused at connect.
    token = issued()
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    assert _refusal(token, vnc_vm, user=None, origin_ok=None).close_code == services.CLOSE_NO_ACCESS


def test_api_viewer_gets_view_only(vnc_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    _share(owner, vnc_vm, other_user, "viewer")
    body = api_client(other_user).post(f"/api/v1/vms/{vnc_vm.uuid}/console/token/").json()
    assert body["view_only"] is True
    assert _consume(_token_of(body), vnc_vm, user=None, origin_ok=None).view_only
