"""Login hardening, fast: the lockout after failed passwords per (user name, address), its page, API tokens not
counted; the TOTP second factor turned on, asked for at login, turned off, reset by staff."""
from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from kvmweb.accounts.tokens import token_create
from kvmweb.accounts.twofactor import totp_begin, totp_confirm, totp_reset
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import PermissionDeniedError, ValidationError

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def totp_code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for ``device`` now (or ``steps_ahead`` 30-second steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():06d}"


def post_login(client: Client, username: str, password: str, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


# ------------------------------------------------------------------------------------------------ lockout
def test_settings_are_wired() -> None:
    assert settings.KVMWEB_LOGIN_FAILURES == settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == dt.timedelta(minutes=settings.KVMWEB_LOGIN_COOLOFF_MINUTES) \
        == dt.timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_five_failures_lock_that_user_from_that_address(owner, other_user) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    for _ in range(4):
        response = post_login(client, "alice", "wrong")
        assert response.status_code == 200 and b"Please enter a correct username" in response.content
    locked = post_login(client, "alice", "wrong")
    html = locked.content.decode()
    assert locked.status_code == 429 and "Too many failed logins" in html
    assert "Try again at" in html and "in 15 minutes" in html and "<strong>alice</strong>" in html
    assert html.count("<h1") == 1
    # the right password does not help while locked, and the retry time does not move
    until = html.split('id="lockout-until">')[1].split("<")[0]
    again = post_login(client, "alice", "alice-pass-123")
    assert again.status_code == 429 and until in again.content.decode()
    assert "_auth_user_id" not in client.session
    # another address, or another user from this one, is not locked
    assert post_login(Client(), "alice", "alice-pass-123", REMOTE_ADDR="10.1.2.3").status_code == 302
    assert post_login(Client(), "bob", "bob-pass-123").status_code == 302


def test_api_tokens_are_not_counted_nor_locked(owner) -> None:  # type: ignore[no-untyped-def]
    secret = token_create(actor=owner, name="script").secret
    for _ in range(10):
        APIClient(HTTP_AUTHORIZATION="Token kvw_wrong").get("/api/v1/vms/")
    assert not AccessAttempt.objects.exists()
    for _ in range(5):
        post_login(Client(), "alice", "wrong")
    assert post_login(Client(), "alice", "alice-pass-123").status_code == 429  # the login is locked...
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/v1/vms/").status_code == 200  # ...the token still works


def test_lockout_ends_after_the_cool_off(owner) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        post_login(Client(), "alice", "wrong")
    assert post_login(Client(), "alice", "alice-pass-123").status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - dt.timedelta(minutes=16))
    assert post_login(Client(), "alice", "alice-pass-123").status_code == 302


def test_behind_the_proxy_the_proxys_forwarded_address_counts(owner, settings) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.accounts.lockout import client_ip

    request = type("R", (), {"META": {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 10.0.0.9"}})()
    settings.KVMWEB_BEHIND_TLS_PROXY = False
    assert client_ip(request) == "127.0.0.1"  # type: ignore[arg-type]
    settings.KVMWEB_BEHIND_TLS_PROXY = True
    assert client_ip(request) == "10.0.0.9"  # type: ignore[arg-type]  # the client's own words before it are not trusted


# ------------------------------------------------------------------------------------------------ TOTP
def _turn_on(user) -> TOTPDevice:  # type: ignore[no-untyped-def]
    device = totp_begin(actor=user).device
    totp_confirm(actor=user, code=totp_code(device))
    device.refresh_from_db()
    return device


def test_turning_on_needs_a_right_code(owner) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(owner)
    assert client.get("/accounts/profile/two-factor/qr.svg").status_code == 404  # nothing being set up
    assert client.post("/accounts/profile/two-factor/start/").status_code == 302
    page = client.get("/accounts/profile/").content.decode()
    assert 'id="totp-qr"' in page and 'src="/accounts/profile/two-factor/qr.svg"' in page
    device = TOTPDevice.objects.get(user=owner, confirmed=False)
    secret = page.split('id="totp-secret">')[1].split("<")[0].replace(" ", "")
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key  # the secret as typed text
    qr = client.get("/accounts/profile/two-factor/qr.svg")
    assert qr.status_code == 200 and qr["Content-Type"] == "image/svg+xml" and qr.content.startswith(b"<svg")
    wrong = client.post("/accounts/profile/two-factor/confirm/", {"totp-on-code": "000000"})
    assert wrong.status_code == 200 and 'id="id_totp-on-code_error"' in wrong.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    device.throttle_reset()
    right = client.post("/accounts/profile/two-factor/confirm/", {"totp-on-code": totp_code(device)})
    assert right.status_code == 302
    assert TOTPDevice.objects.get(user=owner).confirmed
    assert client.get("/accounts/profile/two-factor/qr.svg").status_code == 404  # never shown again
    assert '<span class="state state-running">on</span>' in client.get("/accounts/profile/").content.decode()
    assert AuditEntry.objects.filter(actor=owner, action="account.2fa_on", ok=True).exists()


def test_login_asks_for_the_code_after_the_password(owner) -> None:  # type: ignore[no-untyped-def]
    device = _turn_on(owner)
    client = Client()
    step = post_login(client, "alice", "alice-pass-123")
    assert step.status_code == 302 and step["Location"] == "/accounts/login/code/"
    assert "_auth_user_id" not in client.session  # not logged in yet
    assert client.get("/vms/").status_code == 302
    page = client.get("/accounts/login/code/")
    assert page.status_code == 200 and b"authenticator app" in page.content
    wrong = client.post("/accounts/login/code/", {"code": "12345"})
    assert wrong.status_code == 200 and b"6 digits" in wrong.content and "_auth_user_id" not in client.session
    device.refresh_from_db()
    used = totp_code(device)  # the code of this step was used to turn it on: a code works once
    assert client.post("/accounts/login/code/", {"code": used}).status_code == 200
    device.refresh_from_db()
    device.throttle_reset()
    done = client.post("/accounts/login/code/", {"code": totp_code(device, steps_ahead=1)})
    assert done.status_code == 302 and done["Location"] == "/"  # the dashboard
    assert client.session["_auth_user_id"] == str(owner.pk)
    assert client.get("/vms/").status_code == 200


def test_the_code_step_expires(owner) -> None:  # type: ignore[no-untyped-def]
    _turn_on(owner)
    client = Client()
    post_login(client, "alice", "alice-pass-123")
    session = client.session
    session["kvmweb_login_pending"]["at"] -= 301
    session.save()
    late = client.post("/accounts/login/code/", {"code": "123456"})
    assert late.status_code == 302 and late["Location"] == LOGIN
    assert Client().get("/accounts/login/code/")["Location"] == LOGIN  # nobody pending


def test_wrong_codes_make_the_next_try_wait(owner) -> None:  # type: ignore[no-untyped-def]
    device = _turn_on(owner)
    client = Client()
    post_login(client, "alice", "alice-pass-123")
    client.post("/accounts/login/code/", {"code": "000000"})
    waiting = client.post("/accounts/login/code/", {"code": totp_code(device, steps_ahead=1)})
    assert b"Too many wrong codes: wait" in waiting.content and "_auth_user_id" not in client.session


def test_turning_off_needs_a_code_and_staff_can_reset(owner, staff) -> None:  # type: ignore[no-untyped-def]
    device = _turn_on(owner)
    client = Client()
    client.force_login(owner)
    assert client.post("/accounts/profile/two-factor/off/", {"totp-off-code": "000000"}).status_code == 200
    assert TOTPDevice.objects.filter(user=owner).exists()
    device.refresh_from_db()
    device.throttle_reset()
    off = client.post("/accounts/profile/two-factor/off/", {"totp-off-code": totp_code(device, steps_ahead=1)})
    assert off.status_code == 302 and not TOTPDevice.objects.filter(user=owner).exists()
    assert post_login(Client(), "alice", "alice-pass-123")["Location"] == "/"  # the password alone again

    _turn_on(owner)
    with pytest.raises(PermissionDeniedError):
        totp_reset(actor=owner, user=owner)
    admin = Client()
    admin.force_login(staff)
    response = admin.post("/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [owner.pk]})
    assert response.status_code == 302 and not TOTPDevice.objects.filter(user=owner).exists()
    assert AuditEntry.objects.filter(actor=staff, action="account.2fa_reset", target="alice").exists()


def test_codes_are_six_digits() -> None:
    from kvmweb.accounts.twofactor import _code

    assert _code(" 123 456 ") == "123456"
    for bad in ("", "12345", "1234567", "abcdef"):
        with pytest.raises(ValidationError):
            _code(bad)


def test_staff_revoke_any_token_in_the_admin_with_the_digest_read_only(owner, staff) -> None:  # type: ignore[no-untyped-def]
    made = token_create(actor=owner, name="alice's script")
    admin = Client()
    admin.force_login(staff)
    page = admin.get(f"/admin/accounts/apitoken/{made.token.pk}/change/").content.decode()
    assert made.token.digest in page and 'name="digest"' not in page  # shown, not editable
    assert admin.get("/admin/accounts/apitoken/add/").status_code == 403
    response = admin.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [made.token.pk]})
    assert response.status_code == 302
    made.token.refresh_from_db()
    assert made.token.revoked is not None
    assert AuditEntry.objects.filter(actor=staff, action="token.revoke", target__endswith="of alice").exists()
