"""The optional second factor: a TOTP authenticator app (django-otp's ``TOTPDevice``; RFC 6238, 6 digits, 30 s).

Turning it on takes two steps: :func:`totp_begin` makes an unconfirmed device (its secret is shown as a QR code and as
text), :func:`totp_confirm` confirms it with one code from the app. From then on the login asks for a code after the
password (``views.login_code_view``, through :func:`totp_verify_login`). Turning it off takes a code too; staff reset
a person's device in the admin (:func:`totp_reset`) when the phone is lost.

Codes are checked by django-otp: a code is accepted once (never again in its time step), one step of clock drift
either way is allowed, and wrong codes make the next try wait 1, 2, 4, 8… seconds.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import segno
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from kvmweb.access.permissions import Actor, actor_id, require_login, require_staff
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, ValidationError

from .selectors import totp_device_of

DEVICE_NAME = "authenticator app"
_FIELD = "code"


@dataclass(frozen=True)
class TotpResult:
    message: str


def totp_secret_text(device: TOTPDevice) -> str:
    """The secret as an authenticator app takes it when typed: base32, in groups of four."""
    b32 = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def totp_qr_svg(device: TOTPDevice) -> bytes:
    """The device's ``otpauth://`` URL as a QR code, an SVG made here (no script, no outside service)."""
    out = io.BytesIO()
    segno.make(device.config_url, error="m").save(out, kind="svg", scale=5, dark="#000", light="#fff",
                                                  xmldecl=False, title="QR code for your authenticator app")
    return out.getvalue()


def _code(code: str) -> str:
    code = "".join((code or "").split())
    if not (code.isdigit() and len(code) == 6):
        raise ValidationError("Type the 6 digits your authenticator app shows now.", fields={_FIELD: ["6 digits"]})
    return code


def _check(device: TOTPDevice, code: str) -> None:
    """The code must match ``device`` (django-otp: once per time step; wrong codes make the next try wait)."""
    code = _code(code)
    allowed, why = device.verify_is_allowed()
    if not allowed:
        until = (why or {}).get("locked_until")
        wait = max(1, int((until - timezone.now()).total_seconds()) + 1) if until else 1
        message = f"Too many wrong codes: wait {wait} seconds, then type the code your app shows then."
        raise ValidationError(message, code="throttled", fields={_FIELD: [message]})
    if not device.verify_token(code):
        message = ("That code is not right. Type the code your app shows now (check that the phone's clock is "
                   "right); a code works only once.")
        raise ValidationError(message, code="wrong_code", fields={_FIELD: [message]})


def _audit(actor: Actor, action: str, user: AbstractBaseUser | Actor):  # type: ignore[no-untyped-def]
    return audited(actor=actor, action=action, target_type="user", target=user.get_username())


@dataclass(frozen=True)
class TotpSetup:
    device: TOTPDevice
    message: str


def totp_begin(*, actor: Actor) -> TotpSetup:
    """Start turning the second factor on: a new secret (any earlier unfinished one is dropped)."""
    require_login(actor)
    if totp_device_of(actor) is not None:
        raise ConflictError("Two-factor login is already on.", code="already_on")
    TOTPDevice.objects.filter(user_id=actor_id(actor), confirmed=False).delete()
    device = TOTPDevice.objects.create(user_id=actor_id(actor), name=DEVICE_NAME, confirmed=False)
    return TotpSetup(device=device, message="Scan the QR code with your authenticator app, then type the code it "
                                            "shows to finish.")


def totp_confirm(*, actor: Actor, code: str) -> TotpResult:
    """Finish turning it on with a code from the app (the secret of :func:`totp_begin`)."""
    require_login(actor)
    device = totp_device_of(actor, confirmed=False)
    if device is None:
        raise ConflictError("Start again: press “Turn on two-factor login” first.", code="not_started")
    with _audit(actor, "account.2fa_on", actor):
        _check(device, code)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return TotpResult("Two-factor login is on: from now on the login asks for a code from your app.")


def totp_cancel(*, actor: Actor) -> TotpResult:
    """Drop an unfinished setup."""
    require_login(actor)
    TOTPDevice.objects.filter(user_id=actor_id(actor), confirmed=False).delete()
    return TotpResult("Two-factor setup cancelled; it stays off.")


def totp_disable(*, actor: Actor, code: str) -> TotpResult:
    """Turn it off, proven with a current code."""
    require_login(actor)
    device = totp_device_of(actor)
    if device is None:
        raise ConflictError("Two-factor login is not on.", code="not_on")
    with _audit(actor, "account.2fa_off", actor):
        _check(device, code)
        TOTPDevice.objects.filter(user_id=actor_id(actor)).delete()
    return TotpResult("Two-factor login is off: the login asks for your password only.")


def totp_reset(*, actor: Actor, user: AbstractBaseUser) -> TotpResult:
    """Staff: remove ``user``'s authenticator (a lost phone); they log in with the password and may set it up
    again."""
    require_staff(actor, "reset another person's two-factor login")
    with _audit(actor, "account.2fa_reset", user):
        removed, _ = TOTPDevice.objects.filter(user_id=user.pk).delete()
    if not removed:
        return TotpResult(f"{user.get_username()} had no two-factor login.")
    return TotpResult(f"Two-factor login of {user.get_username()} is off; they can turn it on again.")


def totp_verify_login(*, user: AbstractBaseUser, code: str) -> TOTPDevice:
    """The login's second step: ``code`` must match ``user``'s confirmed device (whose password was right)."""
    device = totp_device_of(user)
    if device is None:
        raise ConflictError("Two-factor login is not on for this account.", code="not_on")
    _check(device, code)
    return device
