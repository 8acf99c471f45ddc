"""cloud-init for new VMs (the NoCloud datasource): what a person asks for, checked; the seed rendered from it;
the seed CD-ROM (ISO 9660, volume label ``cidata``) that the guest reads on its first boot.

``cloud_init_validate`` checks every field (all problems at once, as field errors ``cloud_init.<field>``) and hashes
the password there, so nothing after it ever holds the plain password. ``render`` writes ``meta-data`` and a
``#cloud-config`` ``user-data`` with ``yaml.safe_dump``: user values are data, never pasted into text.

The person's extra user-data is merged on top of ours, key by key: their keys win (their ``hostname`` replaces
ours), except ``users``, whose entries are appended after the user we make.

No libvirt and no database here: the caller stores the ISO (a volume) and attaches it.
"""
from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pycdlib
import yaml
from django.conf import settings
from passlib.hash import sha512_crypt

from kvmweb.accounts.sshkeys import MAX_KEYS, ssh_key_parse
from kvmweb.core.errors import FieldErrors, ValidationError

HEADER = "#cloud-config"
VOLUME_LABEL = "cidata"
HOSTNAME_MAX = 253
LABEL_MAX = 63
PASSWORD_MIN = 8
PASSWORD_MAX = 256
SUDO_RULE = "ALL=(ALL) NOPASSWD:ALL"
# System accounts a Debian, Ubuntu, Fedora or RHEL cloud image has already (or that would mean something else).
RESERVED_USERS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
    "backup", "list", "irc", "gnats", "nobody", "nogroup", "sshd", "messagebus", "systemd-network",
    "systemd-resolve", "systemd-timesync", "polkitd", "adm", "wheel", "sudo", "shutdown", "halt", "operator",
    "ftp", "admin", "staff", "users", "_apt",
})
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class CloudInit:
    """A checked cloud-init request. ``password_hash`` is a SHA-512 crypt hash; ``user_data`` is "" or a
    ``#cloud-config`` document that parses to a mapping."""

    hostname: str
    user: str
    ssh_keys: tuple[str, ...]
    password_hash: str | None
    user_data: str
    instance_id: str


@dataclass(frozen=True)
class Seed:
    """The NoCloud files: ``user-data``, ``meta-data`` and, when asked for, ``network-config``."""

    user_data: str
    meta_data: str
    network_config: str | None = None


def _text(value: object, name: str, errors: FieldErrors) -> str | None:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(name, "must be text")
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        errors.add(name, "is not valid Unicode text")
        return None
    return value


def _hostname(value: object, errors: FieldErrors) -> str:
    text = _text(value, "hostname", errors)
    if text is None:
        return ""
    name = text.strip().lower()
    if not name:
        errors.add("hostname", "give the guest a host name, e.g. web1 or web1.example.org")
    elif len(name) > HOSTNAME_MAX:
        errors.add("hostname", f"a host name has at most {HOSTNAME_MAX} characters")
    else:
        for label in name.split("."):
            if len(label) > LABEL_MAX:
                errors.add("hostname", f"{label[:20]!r}…: each part between dots has at most {LABEL_MAX} characters")
                break
            if not _LABEL.fullmatch(label):
                errors.add("hostname", f"{name[:64]!r} is not a host name: use letters, digits and hyphens, in "
                                       "parts separated by dots, each starting and ending with a letter or digit")
                break
    return name


def _user(value: object, errors: FieldErrors) -> str:
    text = _text(value, "user", errors)
    if text is None:
        return ""
    name = text.strip()
    if not name:
        errors.add("user", "give a user name for the guest, e.g. alice")
    elif not USER_RE.fullmatch(name):
        errors.add("user", f"{name[:40]!r} is not a portable user name: a lower-case letter or _, then up to 31 "
                           "lower-case letters, digits, _ or -")
    elif name in RESERVED_USERS:
        errors.add("user", f"{name!r} is a system account of the guest: choose another name")
    return name


def _ssh_keys(value: object, errors: FieldErrors) -> tuple[str, ...]:
    """One key per line in a text, or a list of lines; each parsed as the profile parses it. Duplicates dropped."""
    if value is None:
        return ()
    lines: Iterable[object]
    if isinstance(value, str):
        lines = [line for line in value.splitlines() if line.strip()]
    elif isinstance(value, list | tuple):
        lines = value
    else:
        errors.add("ssh_keys", "must be a list of public keys")
        return ()
    keys: list[str] = []
    seen: set[str] = set()
    for position, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            errors.add("ssh_keys", f"key {position}: must be text")
            continue
        if not line.isascii():
            errors.add("ssh_keys", f"key {position}: a public key line is plain ASCII text")
            continue
        try:
            parsed = ssh_key_parse(line)
        except ValidationError as exc:
            errors.add("ssh_keys", f"key {position}: {exc.detail}")
            continue
        if parsed.fingerprint not in seen:
            seen.add(parsed.fingerprint)
            keys.append(f"{parsed.public_key} {parsed.comment}".strip())
    if len(keys) > MAX_KEYS:
        errors.add("ssh_keys", f"at most {MAX_KEYS} keys")
    return tuple(keys)


def _password(value: object, errors: FieldErrors) -> str | None:
    """The password to hash, when one is given and acceptable."""
    text = _text(value, "password", errors)
    if not text:
        return None
    if len(text) < PASSWORD_MIN:
        errors.add("password", f"at least {PASSWORD_MIN} characters (or none: log in with an SSH key)")
    elif len(text) > PASSWORD_MAX:
        errors.add("password", f"at most {PASSWORD_MAX} characters")
    elif "\x00" in text:
        errors.add("password", "must not contain a NUL character")
    else:
        return text
    return None


def user_data_parse(text: str) -> dict[str, Any]:
    """The mapping of a ``#cloud-config`` document (already checked by ``cloud_init_validate``)."""
    data = yaml.safe_load(text)
    return dict(data) if data else {}


def _user_data(value: object, errors: FieldErrors) -> str:
    text = _text(value, "user_data", errors)
    if not text or not text.strip():
        return ""
    limit = int(settings.KVMWEB_USER_DATA_MAX)
    size = len(text.encode("utf-8"))
    if size > limit:
        errors.add("user_data", f"{size} bytes: at most {limit} bytes of user-data")
        return ""
    if text.splitlines()[0].rstrip() != HEADER:
        errors.add("user_data", f"the first line must be {HEADER} (other user-data formats are not accepted)")
        return ""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 1}: " if mark is not None else ""
        errors.add("user_data", f"{where}not valid YAML: {problem}")
        return ""
    if data is None:
        return text
    if not isinstance(data, dict):
        errors.add("user_data", f"must be a mapping of cloud-config keys (e.g. packages: [htop]), not a "
                                f"{_yaml_kind(data)}")
        return ""
    if not all(isinstance(key, str) for key in data):
        errors.add("user_data", "every top-level key must be a name, e.g. packages or runcmd")
        return ""
    if "users" in data and not isinstance(data["users"], list):
        errors.add("user_data", "users must be a list (its entries are added after the user made here)")
        return ""
    return text


def _yaml_kind(data: object) -> str:
    return "list" if isinstance(data, list) else "single value"


def cloud_init_validate(
    *, hostname: object, user: object, ssh_keys: object, password: object, user_data: object,
    instance_id: object = None,
) -> CloudInit:
    """Check a cloud-init request; a :class:`ValidationError` lists every problem under ``cloud_init.<field>``.

    ``ssh_keys`` is a list of OpenSSH public-key lines (or one text, a key per line); ``password`` is hashed here
    (SHA-512 crypt) and never kept in plain; ``instance_id`` defaults to a fresh ``iid-<uuid4 hex>``.
    """
    errors = FieldErrors("cloud_init.")
    name = _hostname(hostname, errors)
    login = _user(user, errors)
    keys = _ssh_keys(ssh_keys, errors)
    extra = _user_data(user_data, errors)
    iid = f"iid-{uuid.uuid4().hex}"
    if instance_id is not None:
        if isinstance(instance_id, str) and _INSTANCE_ID.fullmatch(instance_id):
            iid = instance_id
        else:
            errors.add("instance_id", "letters, digits, '.', '_' and '-', at most 64")
    plain = _password(password, errors)
    errors.raise_if_any()
    secret = str(sha512_crypt.hash(plain)) if plain else None  # the plain password goes no further
    return CloudInit(hostname=name, user=login, ssh_keys=keys, password_hash=secret, user_data=extra,
                     instance_id=iid)


def render(ci: CloudInit, *, network_config: Mapping[str, Any] | None = None) -> Seed:
    """The seed files for ``ci``. ``network_config`` (a cloud-init network config, version 1 or 2) is written
    only when given; without it the guest uses cloud-init's fallback (DHCP on its first NIC)."""
    short = ci.hostname.split(".", 1)[0]
    account: dict[str, Any] = {"name": ci.user, "shell": "/bin/bash", "sudo": SUDO_RULE,
                               "lock_passwd": ci.password_hash is None}
    if ci.password_hash is not None:
        account["passwd"] = ci.password_hash
    account["ssh_authorized_keys"] = list(ci.ssh_keys)
    config: dict[str, Any] = {"hostname": short}
    if short != ci.hostname:
        config["fqdn"] = ci.hostname
    config.update({"preserve_hostname": False, "users": [account], "ssh_pwauth": ci.password_hash is not None})
    extra = user_data_parse(ci.user_data) if ci.user_data else {}
    their_users = extra.pop("users", None) or []
    config.update(extra)
    config["users"] = [account, *their_users]
    user_data = HEADER + "\n" + yaml.safe_dump(config, sort_keys=False, default_flow_style=False,
                                               allow_unicode=True)
    meta_data = yaml.safe_dump({"instance-id": ci.instance_id, "local-hostname": ci.hostname}, sort_keys=False)
    network = None
    if network_config is not None:
        network = yaml.safe_dump(dict(network_config), sort_keys=False, default_flow_style=False)
    return Seed(user_data=user_data, meta_data=meta_data, network_config=network)


# ISO 9660 names (level 3: upper case, digits, _), then the names cloud-init reads (Rock Ridge, Joliet).
_SEED_FILES = (("USERDATA.;1", "user-data"), ("METADATA.;1", "meta-data"), ("NETCFG.;1", "network-config"))


def seed_iso(seed: Seed) -> bytes:
    """The NoCloud seed CD-ROM: ISO 9660 labelled ``cidata`` with Rock Ridge and Joliet names."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    contents = (seed.user_data, seed.meta_data, seed.network_config)
    for (iso_name, name), text in zip(_SEED_FILES, contents, strict=True):
        if text is None:
            continue
        data = text.encode("utf-8")
        iso.add_fp(io.BytesIO(data), len(data), f"/{iso_name}", rr_name=name, joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()
