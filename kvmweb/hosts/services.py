"""Hosts: adding one (its SSH key pinned, a connection test before anything is saved), removing one, probing."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, require_staff
from kvmweb.audit.services import audited
from kvmweb.core.errors import ConflictError, FieldErrors, ValidationError

from . import identity
from .models import Host

_URI_RE = re.compile(r"^[a-z0-9+]+://[A-Za-z0-9._@:\[\]%/+?=&-]*$")
SSH_SCHEMES = ("qemu+ssh", "qemu+libssh")
URI_MAX = 255  # Host.uri's length
INSECURE_SCHEMES = ("qemu+tcp", "test")


def host_connection(host: Host) -> hv.Connection:
    return hv.registry.connection(host.uri)


def host_probe(*, host: Host) -> hv.HostFacts:
    """Read the host's capabilities and remember which domain type it offers."""
    facts = hv.host_facts(host_connection(host))
    if host.detected_domain_type != facts.preferred_domain_type:
        host.detected_domain_type = facts.preferred_domain_type
        host.save(update_fields=["detected_domain_type"])
    return facts


def _default_name(uri: str) -> str:
    if uri.startswith("qemu:///"):
        return "local"
    slug = re.sub(r"[^a-z0-9-]+", "-", uri.split("://", 1)[-1].lower()).strip("-")
    return slug[:64] or "host"


def host_register(*, actor: AbstractBaseUser | AnonymousUser | None, uri: str, name: str = "") -> Host:
    """Register a host of the site's configuration (``manage.py bootstrap``, KVMWEB_LIBVIRT_URIS), or return the one
    with this URI. Probing is attempted; a host that does not answer yet is still registered and its pages say so.
    Staff add hosts with :func:`host_add`, which checks far more."""
    uri = uri.strip()
    if not _URI_RE.fullmatch(uri):
        raise ValidationError(f"{uri!r} is not a libvirt URI such as qemu:///system or qemu+ssh://host/system.")
    existing: Host | None = Host.objects.filter(uri=uri).first()
    if existing:
        return existing
    with audited(actor=actor, action="host.register", target_type="host", target=uri, host=uri) as notes:
        host: Host = Host.objects.create(name=name or _default_name(uri), uri=uri)
        try:
            facts = host_probe(host=host)
            notes.append(f"domain type {facts.preferred_domain_type}")
        except hv.HypervisorError as exc:
            notes.append(f"not reachable yet: {exc.detail}")
    return host


# ------------------------------------------------------------------------------------------------ adding a host
class HostKeyToConfirm(ConflictError):
    """The host's SSH key must be confirmed before it is pinned: ``key`` is what the host offers; ask again with
    its fingerprint as ``host_key_fingerprint``."""

    code = "host_key_unconfirmed"

    def __init__(self, key: identity.HostKey, *, instead_of: str = "") -> None:
        changed = (f"The SSH host key of {key.address} is {key.fingerprint}, not the {instead_of} you confirmed: "
                   "nothing was saved. " if instead_of else "")
        super().__init__(
            f"{changed}Confirm the SSH host key of {key.address}: {key.fingerprint} ({key.key_type}). Compare it "
            "with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host, then send it back as "
            "host_key_fingerprint.", fields={"host_key_fingerprint": [key.fingerprint]})
        self.key = key


@dataclass(frozen=True)
class Target:
    """A URI as staff typed it, checked: what is stored (``uri``), what people read (``shown``), and for SSH the
    address whose key is pinned."""

    uri: str
    shown: str
    ssh_host: str = ""
    ssh_port: int = 22


def _ssh_uri(user: str, host: str, port: int | None, path: str) -> str:
    me = identity.ssh_identity()
    netloc = f"{user}@" if user else ""
    netloc += f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    query = urlencode({"keyfile": str(me.key_file), "known_hosts": str(me.known_hosts), "sshauth": "privkey"},
                      safe="/")
    return f"qemu+libssh://{netloc}{path}?{query}"


def _bad_uri(detail: str) -> ValidationError:
    return ValidationError(detail, fields={"uri": [detail]})


def host_target(uri: str) -> Target:
    """Check a URI staff typed and say what is stored: ``qemu+ssh``/``qemu+libssh`` become ``qemu+libssh`` with the
    portal's key and known_hosts; ``qemu+tls`` as typed; ``qemu+tcp`` (and libvirt's test driver) only where
    ``KVMWEB_ALLOW_INSECURE_HOSTS`` is on; a local ``qemu:///system``."""
    uri = uri.strip()
    if not _URI_RE.fullmatch(uri):
        raise _bad_uri(f"{uri!r} is not a libvirt URI such as qemu+ssh://root@host/system.")
    parts = urlsplit(uri)
    scheme = parts.scheme
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port == -1 or (parts.netloc and not parts.hostname):
        raise _bad_uri(f"{uri!r} has no valid host and port.")
    if scheme in SSH_SCHEMES:
        if not parts.hostname or not identity.HOSTNAME_RE.fullmatch(parts.hostname):
            raise _bad_uri("An SSH URI names the host: qemu+ssh://user@host[:port]/system.")
        if parts.path not in ("/system", "/session") or parts.query or parts.fragment or parts.password:
            raise _bad_uri(
                "Give an SSH URI without options or password: qemu+ssh://user@host[:port]/system (the portal adds "
                "its own key and known_hosts).")
        user = parts.username or ""
        if user and not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}", user):
            raise _bad_uri(f"{user!r} is not a user name.")
        stored = _ssh_uri(user, parts.hostname, port, parts.path)
        return Target(uri=stored, shown=hv.shorten_uri(stored), ssh_host=parts.hostname, ssh_port=port or 22)
    if scheme == "qemu+tls" and parts.hostname:
        return Target(uri=uri, shown=hv.shorten_uri(uri))
    if scheme == "qemu" and not parts.netloc and parts.path in ("/system", "/session"):
        return Target(uri=uri, shown=uri)
    if scheme in INSECURE_SCHEMES:
        if not settings.KVMWEB_ALLOW_INSECURE_HOSTS:
            raise _bad_uri(
                f"{scheme}:// has neither authentication nor encryption: anyone who reaches the port controls the "
                "host. Use qemu+ssh:// or qemu+tls:// (qemu+tcp:// is for tests: KVMWEB_ALLOW_INSECURE_HOSTS=1).")
        return Target(uri=uri, shown=hv.shorten_uri(uri))
    raise _bad_uri(
        f"{uri!r}: use qemu+ssh://user@host/system (or qemu+libssh://), qemu+tls://host/system, or "
        "qemu:///system for this machine.")


def _pin(target: Target, confirmed: str) -> tuple[identity.HostKey, bool]:
    """Read the host's key, check it is the one staff confirmed (and any key pinned for it already), pin it.
    The key, and True when this call added the line (so a failure takes it away again)."""
    key = identity.host_key_scan(host=target.ssh_host, port=target.ssh_port)
    if not confirmed:
        raise HostKeyToConfirm(key)
    if confirmed.strip() != key.fingerprint:
        raise HostKeyToConfirm(key, instead_of=confirmed.strip())
    pinned = identity.known_hosts_pinned(key.address)
    if pinned and key.line not in {p.line for p in pinned}:
        raise ConflictError(
            f"The SSH host key of {key.address} is not the one pinned when it was added: it shows {key.fingerprint}. "
            "If the host was reinstalled, remove it (every host at that address) and add it again.",
            code="host_key_changed", fields={"uri": ["the host's SSH key changed"]})
    return key, identity.known_hosts_pin(key)


@dataclass(frozen=True)
class HostResult:
    host: Host
    message: str


def host_add(*, actor: Actor, name: str, uri: str, host_key_fingerprint: str = "") -> HostResult:
    """Add a host (staff). SSH hosts: the first call answers :class:`HostKeyToConfirm` with the host's key; the
    second, with that fingerprint, pins it. Then a connection test (libvirt open + capabilities): when it fails,
    nothing is saved and the pinned key is taken away again."""
    require_staff(actor, "add hosts")
    errors = FieldErrors()
    name = name.strip()
    try:
        validate_slug(name)
    except Exception:  # noqa: BLE001 - Django's ValidationError: say it our way
        errors.add("name", "letters, digits, hyphens and underscores only")
    if len(name) > 64:
        errors.add("name", "at most 64 characters")
    errors.raise_if_any()
    target = host_target(uri)
    if len(target.uri) > URI_MAX:
        raise _bad_uri("The URI (with the portal's key paths) is too long: set a shorter KVMWEB_SSH_DIR.")
    if Host.objects.filter(name=name).exists():
        raise ValidationError(f"A host named {name} exists already.", fields={"name": ["taken by another host"]})
    same = [h.name for h in Host.objects.all() if hv.shorten_uri(h.uri) == target.shown]
    if same:
        raise _bad_uri(f"{target.shown} is the host {same[0]} already.")
    key, pinned_now = _pin(target, host_key_fingerprint) if target.ssh_host else (None, False)
    with audited(actor=actor, action="host.add", target_type="host", target=name, host=target.shown) as notes:
        probe = hv.Connection(target.uri)
        try:
            facts = hv.host_facts(probe)
        except hv.HypervisorError as exc:
            if key is not None and pinned_now:
                identity.known_hosts_unpin(key.address)
            words = f"The connection test failed, nothing was saved: {exc.detail}"
            raise ValidationError(words, fields={"uri": [words]}) from exc
        finally:
            probe.close()
        try:
            with transaction.atomic():
                host: Host = Host.objects.create(name=name, uri=target.uri,
                                                 detected_domain_type=facts.preferred_domain_type)
        except IntegrityError as exc:  # added by someone else meanwhile
            if key is not None and pinned_now:
                identity.known_hosts_unpin(key.address)
            raise ValidationError(f"A host named {name} or with this URI was added meanwhile.",
                                  fields={"name": ["taken by another host"]}) from exc
        hv.registry.forget(target.uri)  # a failure remembered from before does not hide the new host
        notes.append(f"{facts.hostname}, libvirt {facts.libvirt_version}, {facts.preferred_domain_type}")
        if key is not None:
            notes.append(f"host key {key.fingerprint} pinned for {key.address}")
    return HostResult(host=host, message=f"Host {name} added ({target.shown}): {facts.hostname}, "
                                        f"{facts.cpus} CPUs, libvirt {facts.libvirt_version}.")


# ------------------------------------------------------------------------------------------------ removing a host
RemovalCheck = Callable[[Host], "str | None"]
_removal_checks: list[RemovalCheck] = []


def host_removal_check(check: RemovalCheck) -> RemovalCheck:
    """Register a reason a host cannot be removed now (an app above this one: unfinished jobs on the host)."""
    _removal_checks.append(check)
    return check


def host_remove(*, actor: Actor, host: Host) -> HostResult:
    """Forget a host (staff): its records go (VMs and their shares, console tokens, pool and network grants, the
    media and backup catalogue), its domains stay defined on it, untouched; its connection is closed and its pinned
    SSH key removed when no other host uses that address. Refused while work runs on it."""
    require_staff(actor, "remove hosts")
    for check in _removal_checks:
        reason = check(host)
        if reason:
            raise ConflictError(f"{host.name} cannot be removed now: {reason}")
    shown = hv.shorten_uri(host.uri)
    with audited(actor=actor, action="host.remove", target_type="host", target=host.name, host=shown) as notes:
        records = host.machines.count()
        with transaction.atomic():
            host.delete()
        hv.registry.forget(host.uri)
        parts = urlsplit(host.uri)
        if parts.scheme in SSH_SCHEMES and parts.hostname:
            address = identity.known_address(parts.hostname, parts.port or 22)
            others = [h for h in Host.objects.all() if (u := urlsplit(h.uri)).scheme in SSH_SCHEMES
                      and identity.known_address(u.hostname or "", u.port or 22) == address]
            if not others and identity.known_hosts_unpin(address):
                notes.append(f"pinned key of {address} removed")
        notes.append(f"{records} VM records forgotten; the domains stay defined on the host")
    return HostResult(host=host, message=f"Host {host.name} removed: the portal forgot {records} VM record(s); "
                                        "the VMs stay defined on it.")
