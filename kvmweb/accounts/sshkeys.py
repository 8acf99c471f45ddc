"""SSH public keys of a person, for the guests they make (``selectors.ssh_keys_of``): parsed and checked with
``cryptography`` before anything is stored, fingerprinted as ``ssh-keygen -lf`` prints it.

Accepted: one OpenSSH line (``type base64 [comment]``) of ``ssh-ed25519``, ``ecdsa-sha2-nistp256/384/521``, or
``ssh-rsa`` of at least 2048 bits. A private key pasted by mistake is refused with words saying so, and never stored
or echoed back.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_public_key
from django.db import IntegrityError, transaction

from kvmweb.access.permissions import Actor, actor_id, require_login, require_staff
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError

from .models import SshKey

KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
RSA_MIN_BITS = 2048
MAX_LENGTH = 16 * 1024  # an RSA key of 16384 bits is about 2.8 KiB as a line
NAME_MAX = 100
MAX_KEYS = 100
_PRIVATE_MARKS = ("PRIVATE KEY", "PuTTY-User-Key-File", "BEGIN SSH2 ENCRYPTED PRIVATE KEY")
_FIELD = "public_key"


@dataclass(frozen=True)
class ParsedKey:
    key_type: str
    bits: int
    public_key: str  # "type base64", re-encoded from the parsed key
    fingerprint: str  # "SHA256:<base64 without padding>"
    comment: str


def _invalid(message: str, code: str = "invalid") -> ValidationError:
    return ValidationError(message, code=code, fields={_FIELD: [message]})


def ssh_fingerprint(blob: bytes) -> str:
    """The SHA-256 fingerprint of a key's wire-format blob, as ``ssh-keygen -lf`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def looks_private(text: str) -> bool:
    """Whether ``text`` holds a private key (a form must not show it back)."""
    return any(mark in (text or "") for mark in _PRIVATE_MARKS)


def ssh_key_parse(text: str) -> ParsedKey:
    """Check one pasted public-key line; :class:`ValidationError` (on the field ``public_key``) in words."""
    text = (text or "").strip()
    if not text:
        raise _invalid("Paste a public key: the one line of your .pub file, e.g. ~/.ssh/id_ed25519.pub.")
    if looks_private(text):
        raise _invalid("This is a PRIVATE key: it was not stored. Never give your private key to anyone or any "
                       "site. Paste the public key instead: the .pub file next to it (e.g. ~/.ssh/id_ed25519.pub).",
                       code="private_key")
    if len(text) > MAX_LENGTH:
        raise _invalid(f"That is too long for a public key (at most {MAX_LENGTH // 1024} KiB).")
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY") or text.startswith("-----BEGIN"):
        raise _invalid("This is a public key in another format: paste the OpenSSH one-line form "
                       "(`ssh-keygen -i -f key.pub` converts an SSH2/RFC 4716 key).")
    if len(text.splitlines()) > 1:
        raise _invalid("Paste one key, on one line (add several keys one at a time).")
    parts = text.split(None, 2)
    key_type = parts[0]
    if key_type == "ssh-dss":
        raise _invalid("DSA keys (ssh-dss) are obsolete and refused: make a new key with `ssh-keygen -t ed25519`.",
                       code="unsupported_key")
    if key_type not in KEY_TYPES:
        raise _invalid("That does not look like an SSH public key: the line must start with its type, one of "
                       + ", ".join(KEY_TYPES) + ".", code="unsupported_key")
    if len(parts) < 2:
        raise _invalid("The key's data is missing after its type.")
    try:
        key = load_ssh_public_key(f"{key_type} {parts[1]}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise _invalid(f"This is not a valid {key_type} public key: its data is damaged or incomplete (copy the "
                       "whole line again).") from None
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < RSA_MIN_BITS:
            raise _invalid(f"This RSA key has {bits} bits; at least {RSA_MIN_BITS} are needed. Make a new key with "
                           "`ssh-keygen -t ed25519`.", code="key_too_short")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        bits = 256
    else:  # pragma: no cover - the type list above admits no other kind
        raise _invalid(f"{key_type} keys are not supported.", code="unsupported_key")
    public_key = key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")
    blob = base64.b64decode(public_key.split()[1])
    return ParsedKey(key_type=key_type, bits=bits, public_key=public_key, fingerprint=ssh_fingerprint(blob),
                     comment=parts[2].strip() if len(parts) > 2 else "")


@dataclass(frozen=True)
class SshKeyResult:
    key: SshKey
    message: str


def ssh_key_add(*, actor: Actor, public_key: str, name: str = "") -> SshKeyResult:
    """Add a public key for ``actor``; ``name`` defaults to the key's comment."""
    require_login(actor)
    parsed = ssh_key_parse(public_key)
    name = (name or "").strip() or parsed.comment[:NAME_MAX] or f"{parsed.key_type} key"
    if len(name) > NAME_MAX:
        raise ValidationError(f"A key's name has at most {NAME_MAX} characters.",
                              fields={"name": [f"at most {NAME_MAX} characters"]})
    mine = SshKey.objects.filter(user_id=actor_id(actor))
    same = mine.filter(fingerprint=parsed.fingerprint).first()
    duplicate = f"You added this key already, as “{same.name if same else name}” ({parsed.fingerprint})."
    if same is not None:
        raise ConflictError(duplicate, code="duplicate", fields={_FIELD: [duplicate]})
    if mine.count() >= MAX_KEYS:
        raise ConflictError(f"You have {MAX_KEYS} keys: delete one first.", code="too_many")
    with audited(actor=actor, action="sshkey.add", target_type="sshkey", target=f"{name} {parsed.fingerprint}"):
        try:
            with transaction.atomic():
                key = SshKey.objects.create(user_id=actor_id(actor), name=name, key_type=parsed.key_type,
                                            bits=parsed.bits, public_key=parsed.public_key,
                                            fingerprint=parsed.fingerprint)
        except IntegrityError:  # the same key, added at the same moment from elsewhere
            raise ConflictError(duplicate, code="duplicate", fields={_FIELD: [duplicate]}) from None
    return SshKeyResult(key=key, message=f"SSH key “{name}” added ({parsed.key_type}, {parsed.fingerprint}).")


def ssh_key_delete(*, actor: Actor, key_id: int, any_user: bool = False) -> SshKeyResult:
    """Delete one of ``actor``'s keys; with ``any_user`` (staff only, the admin) anyone's. Others' keys are 404."""
    require_login(actor)
    keys = SshKey.objects.select_related("user")
    if any_user:
        require_staff(actor, "delete other people's SSH keys")
    else:
        keys = keys.filter(user_id=actor_id(actor))
    key = keys.filter(pk=key_id).first()
    if key is None:
        raise NotFoundError("No such SSH key.")
    target = f"{key.name} {key.fingerprint}" + (f" of {key.user.get_username()}" if any_user else "")
    with audited(actor=actor, action="sshkey.delete", target_type="sshkey", target=target):
        key.delete()
    return SshKeyResult(key=key, message=f"SSH key “{key.name}” deleted.")
