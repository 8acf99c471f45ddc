from __future__ import annotations

import re

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from kvmweb import hypervisor as hv
from kvmweb.audit.services import audited
from kvmweb.core.errors import ValidationError

from .models import Host

_URI_RE = re.compile(r"^[a-z0-9+]+://[A-Za-z0-9._@:\[\]%/+?=&-]*$")


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


@transaction.atomic
def host_register(*, actor: AbstractBaseUser | AnonymousUser | None, uri: str, name: str = "") -> Host:
    """Add a host (or return the one with this URI). Probing is attempted; a host that does not answer yet
    is still registered and its pages say so."""
    uri = uri.strip()
    if not _URI_RE.fullmatch(uri):
        raise ValidationError(f"{uri!r} is not a libvirt URI such as qemu:///system or qemu+ssh://host/system.")
    existing = Host.objects.filter(uri=uri).first()
    if existing:
        return existing
    with audited(actor=actor, action="host.register", target_type="host", target=uri, host=uri) as notes:
        host = Host.objects.create(name=name or _default_name(uri), uri=uri)
        try:
            facts = host_probe(host=host)
            notes.append(f"domain type {facts.preferred_domain_type}")
        except hv.HypervisorError as exc:
            notes.append(f"not reachable yet: {exc.detail}")
    return host
