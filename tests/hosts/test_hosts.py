"""Hosts: registering a libvirt URI, probing what it offers, showing hosts that do not answer (fast: libvirt's
test driver and a URI nobody answers on)."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from kvmweb.audit.models import AuditEntry
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_get, host_status, host_status_list
from kvmweb.hosts.services import host_probe, host_register
from kvmweb.core.errors import NotFoundError, ValidationError

pytestmark = pytest.mark.django_db
NOBODY = "qemu+tcp://127.0.0.1:1/system"  # a port nothing listens on


def test_register_probes_the_host_and_records_its_domain_type(staff) -> None:  # type: ignore[no-untyped-def]
    host = host_register(actor=staff, uri="test:///default", name="drv")
    assert (host.name, host.uri, host.detected_domain_type) == ("drv", "test:///default", "qemu")
    assert host_register(actor=staff, uri="test:///default") == host  # the same URI is the same host
    entry = AuditEntry.objects.get(action="host.register")
    assert entry.ok and "domain type qemu" in entry.detail


def test_a_host_that_does_not_answer_is_registered_and_shown_as_such(staff) -> None:  # type: ignore[no-untyped-def]
    host = host_register(actor=staff, uri=NOBODY)
    assert host.name == "127-0-0-1-1-system" and host.detected_domain_type == ""
    status = host_status(host)
    assert not status.available and status.facts is None and "Cannot connect" in (status.error or "")
    assert [s.host for s in host_status_list()] == [host]


@pytest.mark.parametrize("uri", ["", "not a uri", "qemu:///system; rm -rf /", "http://x/<y>", "qemu:///sys tem"])
def test_malformed_uris_are_refused_and_nothing_is_made(staff, uri: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        host_register(actor=staff, uri=uri)
    assert Host.objects.count() == 0


def test_the_effective_domain_type_follows_overrides(settings, test_host) -> None:  # type: ignore[no-untyped-def]
    facts = host_probe(host=test_host)
    assert facts.preferred_domain_type == "qemu"
    assert test_host.effective_domain_type == "qemu"
    settings.KVMWEB_DOMAIN_TYPE = "kvm"
    assert test_host.effective_domain_type == "kvm"
    test_host.domain_type = Host.DomainType.QEMU
    assert test_host.effective_domain_type == "qemu"  # the host's own setting wins


def test_disabled_hosts_are_not_found(test_host) -> None:  # type: ignore[no-untyped-def]
    assert host_get(test_host.pk) == test_host
    Host.objects.filter(pk=test_host.pk).update(enabled=False)
    with pytest.raises(NotFoundError):
        host_get(test_host.pk)


def test_hosts_api_and_page_are_for_staff(client, owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_login(owner)
    assert api.get("/api/v1/hosts/").status_code == 403
    api.force_login(staff)
    rows = api.get("/api/v1/hosts/").json()
    assert [(r["name"], r["available"], r["cpus"] is not None) for r in rows] == [("testdrv", True, True)]
    assert api.get(f"/api/v1/hosts/{test_host.pk}/").json()["uri"] == "test:///default"
    assert api.get("/api/v1/hosts/999999/").status_code == 404
    client.force_login(owner)
    assert client.get("/hosts/").status_code in (302, 403)
    client.force_login(staff)
    page = client.get("/hosts/")
    assert page.status_code == 200 and b"test:///default" in page.content
