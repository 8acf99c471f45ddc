"""The person's own account in Chromium against the live portal: the password change, an API token from its
making to its use by a plain HTTP client (no cookie) and its revocation, SSH keys, the lockout page, and two-factor
login turned on and then asked for. Every page at 1366 and 390 px: screenshots, no sideways scroll, no axe-core
violation, no inline code, nothing the Content-Security-Policy blocks."""
from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from typing import Any

import pytest
from django_otp.oath import TOTP

from kvmweb.accounts.models import ApiToken, SshKey
from tests.core.test_pages_browser import CSP_RECORDER, INLINE_CODE
from tests.live import login
from tests.machines.test_vm_page_browser import check_widths

pytestmark = [pytest.mark.browser]


def api_get(url: str, secret: str) -> tuple[int, dict[str, Any]]:
    """A plain HTTP client: urllib, no cookie, only the token."""
    request = urllib.request.Request(url, headers={"Authorization": f"Token {secret}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def clean(page) -> None:  # type: ignore[no-untyped-def]
    """No inline code in the page, and nothing the CSP blocked."""
    assert page.evaluate(INLINE_CODE) == []
    assert page.evaluate("() => window.__csp") == []


def log_out(page) -> None:  # type: ignore[no-untyped-def]
    page.click("header form[action='/accounts/logout/'] button")
    page.wait_for_url("**/accounts/login/")


def test_password_then_a_token_from_birth_to_revocation(portal, page, owner) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(CSP_RECORDER)
    login(page, portal, "alice", "alice-pass-123")
    page.click("#profile-link")
    page.wait_for_url("**/accounts/profile/")
    assert page.locator("h1").inner_text() == "Your account"
    check_widths(page, "profile")
    clean(page)

    # the password: the old one is checked, the new one is the next login's
    page.click("#change-password")
    page.wait_for_url("**/accounts/password_change/")
    page.fill("#id_old_password", "not-my-password")
    page.fill("#id_new_password1", "a-fresh-secret-77")
    page.fill("#id_new_password2", "a-fresh-secret-77")
    page.click("#password-submit")
    error = page.locator("#id_old_password_error")
    assert "incorrect" in error.inner_text()
    assert page.get_attribute("#id_old_password", "aria-invalid") == "true"
    assert "id_old_password_error" in (page.get_attribute("#id_old_password", "aria-describedby") or "")
    check_widths(page, "password-change-error")
    clean(page)
    page.fill("#id_old_password", "alice-pass-123")
    page.fill("#id_new_password1", "a-fresh-secret-77")
    page.fill("#id_new_password2", "a-fresh-secret-77")
    page.click("#password-submit")
    page.wait_for_url("**/accounts/password_change/done/")
    check_widths(page, "password-changed")
    log_out(page)
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.click("button[type=submit]")
    assert page.locator("#login-error").is_visible()  # the old password no longer works
    login(page, portal, "alice", "a-fresh-secret-77")

    # a token: made, shown once, used without a cookie, revoked, refused
    page.goto(f"{portal.url}/accounts/profile/")
    page.fill("#id_token-name", "nightly backup")
    page.click("#create-token")
    page.wait_for_selector("#new-token-box")
    secret = page.input_value("#new-token")
    assert secret.startswith("kvw_")
    check_widths(page, "profile-new-token")
    clean(page)
    page.reload()
    assert page.locator("#new-token").count() == 0 and secret not in page.content()  # shown once
    row = page.locator("#token-table tbody tr", has_text="nightly backup")
    assert secret[:12] in row.inner_text() and "never" in row.inner_text()

    status, body = api_get(f"{portal.url}/api/v1/vms/", secret)
    assert status == 200 and "results" in body
    page.reload()
    assert page.locator("#token-table tbody tr", has_text="nightly backup").locator("td").nth(4).inner_text() \
        != "never"  # last used

    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.locator("#token-table tbody tr", has_text="nightly backup").locator("button.token-revoke").click()
    page.wait_for_selector("#no-tokens")
    assert questions and "Revoke the token “nightly backup”?" in questions[0]
    assert "revoked" in page.locator(".messages").inner_text()
    status, body = api_get(f"{portal.url}/api/v1/vms/", secret)
    assert status == 401 and body["error"] == "token_revoked", body
    assert ApiToken.objects.get(name="nightly backup").revoked is not None


def test_ssh_keys_added_and_deleted(portal, page, owner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(CSP_RECORDER)
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f", str(key)], check=True)
    fingerprint = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], check=True, capture_output=True,
                                 text=True).stdout.split()[1]
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/accounts/profile/")

    page.fill("#id_key-public_key", key.read_text())  # the private key, by mistake
    page.click("#add-ssh-key")
    page.wait_for_selector("#id_key-public_key_error")
    assert "PRIVATE key" in page.inner_text("#id_key-public_key_error")
    assert page.input_value("#id_key-public_key") == ""  # not shown back
    check_widths(page, "profile-ssh-key-error")
    clean(page)
    assert not SshKey.objects.exists()

    page.fill("#id_key-public_key", (tmp_path / "id_ed25519.pub").read_text())
    page.click("#add-ssh-key")
    page.wait_for_selector("#ssh-key-table")
    row = page.locator("#ssh-key-table tbody tr", has_text="alice@laptop")
    assert fingerprint in row.inner_text() and "256 bits" in row.inner_text()
    check_widths(page, "profile-ssh-keys")

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.ssh-key-delete").click()
    page.wait_for_selector("#no-ssh-keys")
    assert not SshKey.objects.exists()


def test_five_wrong_passwords_lock_the_login(portal, page, other_user) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(CSP_RECORDER)
    page.goto(f"{portal.url}/accounts/login/")
    for attempt in range(5):
        page.fill("#id_username", "bob")
        page.fill("#id_password", f"wrong-{attempt}")
        page.click("button[type=submit]")
        page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Too many failed logins"
    detail = page.inner_text("#lockout-detail")
    assert "Try again at" in detail and "in 15 minutes" in detail
    check_widths(page, "login-locked-out")
    clean(page)
    page.goto(f"{portal.url}/accounts/login/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "bob-pass-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Too many failed logins"  # the right password waits too


def _code(secret_text: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app computes from the secret as the page shows it."""
    import time

    b32 = secret_text.replace(" ", "")
    totp = TOTP(base64.b32decode(b32 + "=" * (-len(b32) % 8)))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def test_two_factor_on_then_asked_for_at_login(portal, page, owner) -> None:  # type: ignore[no-untyped-def]
    page.add_init_script(CSP_RECORDER)
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/accounts/profile/")
    page.click("#totp-begin")
    page.wait_for_selector("#totp-qr")
    page.wait_for_function("() => document.querySelector('#totp-qr').complete")  # the image's request ended
    assert page.evaluate("() => document.querySelector('#totp-qr').naturalWidth") > 100  # the SVG loaded
    secret = page.inner_text("#totp-secret")
    check_widths(page, "profile-two-factor-setup")
    clean(page)
    page.fill("#id_totp-on-code", "000000")
    page.click("#totp-confirm")
    page.wait_for_selector("#id_totp-on-code_error")
    page.wait_for_timeout(1100)  # a wrong code makes the next try wait a second
    page.fill("#id_totp-on-code", _code(secret))
    page.click("#totp-confirm")
    page.wait_for_selector("#totp-off-form")
    assert "on" in page.inner_text("#totp-state")
    check_widths(page, "profile-two-factor-on")

    log_out(page)
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/login/code/")
    check_widths(page, "login-code")
    clean(page)
    page.goto(f"{portal.url}/vms/")
    assert "/accounts/login/" in page.url  # the password alone did not log in
    page.goto(f"{portal.url}/accounts/login/code/")
    page.fill("#id_code", _code(secret, steps_ahead=1))
    page.click("#login-code-submit")
    page.wait_for_url(f"{portal.url}/")  # logins land on the dashboard
    assert page.inner_text("#profile-link").startswith("alice")
