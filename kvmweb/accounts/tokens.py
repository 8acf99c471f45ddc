"""API tokens, self-service: make one (the secret is shown once), revoke one, and check the one a request sends.

**The secret and its hash.** A token is ``kvw_`` followed by 43 URL-safe characters: 32 bytes (256 bits) from
:func:`secrets.token_urlsafe`. The database keeps its SHA-256 digest (hex, unique, indexed) and, to tell tokens
apart, its first 12 characters (``prefix``: ``kvw_`` and 48 of the 256 bits). A request's token is hashed once and
looked up by that digest.

A fast hash is right here, and a slow one (PBKDF2, bcrypt, Argon2) would buy nothing: slow hashes exist to make
*guessing* a low-entropy password from a stolen digest expensive. A 256-bit random secret cannot be guessed however
fast the hash is (2^256 tries), and there is no dictionary of likely values, so no salt is needed either; a slow
hash would only cost CPU on every API request. A stolen copy of the database therefore gives no usable token.

Tokens made by DRF's ``authtoken`` before (40 hex characters, 160 random bits) were moved here by migration
``0003`` with the same digest of their key, so existing clients keep working; the plain-text rows were deleted.

**Checking a token** (:func:`token_authenticate`, used by ``authentication.ApiTokenAuthentication``) refuses an
unknown, revoked or expired token, or a disabled account, with words saying which; it records the time of use at
most once a minute (one conditional UPDATE, no write on the other requests).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from kvmweb.access.permissions import Actor, actor_id, require_login, require_staff
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError

from .models import ApiToken

SECRET_PREFIX = "kvw_"
PREFIX_LENGTH = 12
NAME_MAX = 100
MAX_TOKENS = 100  # live (not revoked) tokens per user
LAST_USED_EVERY = dt.timedelta(minutes=1)


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _when(moment: dt.datetime) -> str:
    return str(timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z"))


# ------------------------------------------------------------------------------------------------ make, revoke
@dataclass(frozen=True)
class TokenCreated:
    token: ApiToken
    secret: str  # shown once; never stored
    message: str


def _expiry(expires: dt.datetime | dt.date | None) -> dt.datetime | None:
    """A date means "until the end of that day" (the portal's time zone); a time must lie in the future."""
    if expires is None:
        return None
    until: dt.datetime
    if not isinstance(expires, dt.datetime):
        midnight = dt.datetime.combine(expires + dt.timedelta(days=1), dt.time.min)
        until = timezone.make_aware(midnight, timezone.get_current_timezone())
    elif timezone.is_naive(expires):
        until = timezone.make_aware(expires, timezone.get_current_timezone())
    else:
        until = expires
    if until <= timezone.now():
        raise ValidationError("The expiry must lie in the future.", fields={"expires": ["a date in the future"]})
    return until


def token_create(*, actor: Actor, name: str, expires: dt.datetime | dt.date | None = None) -> TokenCreated:
    """Make an API token for ``actor`` (who must be logged in). Returns the secret, which is never shown again."""
    require_login(actor)
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the token a name (what or where it is used).", fields={"name": ["required"]})
    if len(name) > NAME_MAX:
        raise ValidationError(f"A token's name has at most {NAME_MAX} characters.",
                              fields={"name": [f"at most {NAME_MAX} characters"]})
    until = _expiry(expires)
    live = ApiToken.objects.filter(user_id=actor_id(actor), revoked__isnull=True)
    if live.count() >= MAX_TOKENS:
        raise ConflictError(f"You have {MAX_TOKENS} tokens: revoke one you no longer use first.", code="too_many")
    secret = token_new_secret()
    with audited(actor=actor, action="token.create", target_type="token", target=f"{name} {secret[:PREFIX_LENGTH]}"):
        token = ApiToken.objects.create(user_id=actor_id(actor), name=name, prefix=secret[:PREFIX_LENGTH],
                                        digest=token_digest(secret), expires=until)
    ends = f", valid until {_when(until)}" if until else ", valid until you revoke it"
    return TokenCreated(token=token, secret=secret,
                        message=f"Token “{name}” created{ends}. Copy it now: it is shown only this once.")


@dataclass(frozen=True)
class TokenRevoked:
    token: ApiToken
    message: str


def token_revoke(*, actor: Actor, token_id: int, any_user: bool = False) -> TokenRevoked:
    """Revoke one of ``actor``'s own tokens; with ``any_user`` (staff only, the admin) anyone's. A token of someone
    else, or one already revoked, is a 404."""
    require_login(actor)
    tokens = ApiToken.objects.filter(revoked__isnull=True)
    if any_user:
        require_staff(actor, "revoke other people's tokens")
    else:
        tokens = tokens.filter(user_id=actor_id(actor))
    token = tokens.select_related("user").filter(pk=token_id).first()
    if token is None:
        raise NotFoundError("No such token.")
    target = f"{token.name} {token.prefix}" + (f" of {token.user.get_username()}" if any_user else "")
    with audited(actor=actor, action="token.revoke", target_type="token", target=target):
        token.revoked = timezone.now()
        token.save(update_fields=["revoked"])
    return TokenRevoked(token=token, message=f"Token “{token.name}” ({token.prefix}…) revoked: it no longer works.")


# ------------------------------------------------------------------------------------------------ checking
class TokenRefused(Exception):
    """A token a request sent that does not let it in: ``code`` and words for the client."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def token_authenticate(*, secret: str) -> tuple[AbstractBaseUser, ApiToken]:
    """The user a token stands for, and the token; :class:`TokenRefused` for one that does not let them in."""
    token = ApiToken.objects.select_related("user").filter(digest=token_digest(secret)).first()
    if token is None:
        raise TokenRefused("invalid_token", "Invalid token.")
    now = timezone.now()
    if token.revoked is not None:
        raise TokenRefused("token_revoked", f"This token was revoked on {_when(token.revoked)}.")
    if token.expires is not None and token.expires <= now:
        raise TokenRefused("token_expired", f"This token expired on {_when(token.expires)}: create a new one on "
                                            "your profile page.")
    if not token.user.is_active:
        raise TokenRefused("user_inactive", "This account is disabled.")
    if token.last_used is None or now - token.last_used >= LAST_USED_EVERY:
        # conditional: of many requests in the same minute, one writes
        ApiToken.objects.filter(Q(last_used__isnull=True) | Q(last_used__lte=now - LAST_USED_EVERY),
                                pk=token.pk).update(last_used=now)
        token.last_used = now
    return token.user, token
