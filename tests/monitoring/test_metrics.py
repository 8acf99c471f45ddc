"""``GET /metrics``: Prometheus' text format, parsed with prometheus_client's own parser; staff only (a session or
a staff user's API token), refused to anonymous visitors and to everyone else."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from kvmweb.accounts.tokens import token_create
from kvmweb.machines import services
from kvmweb.monitoring.collector import Collector
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db


def families(body: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def samples(fams: dict[str, Any], name: str) -> dict[str, Any]:
    """``uuid``/``host`` label -> value of the (gauge) family ``name``."""
    return {s.labels.get("uuid") or s.labels["host"]: s.value for s in fams[name].samples}


@pytest.fixture
def sampled(owner, test_host, stats_redis):  # type: ignore[no-untyped-def]
    """alice's running VM and shut-off VM, sampled twice by a collector."""
    on = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    off = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    services.vm_start(actor=owner, vm=on)
    collector = Collector(test_host.uri, test_host.pk, interval=5)
    collector.sample_once()
    collector.sample_once()
    return on, off


def test_staff_session_reads_every_vm_and_host(sampled, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    on, off = sampled
    client = Client()
    client.force_login(staff)
    response = client.get("/metrics", HTTP_ACCEPT="text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    fams = families(response.content)
    running = samples(fams, "kvmweb_vm_running")
    assert running[str(on.uuid)] == 1 and running[str(off.uuid)] == 0
    cpu = fams["kvmweb_vm_cpu_percent"]
    assert cpu.type == "gauge"
    mine = [s for s in cpu.samples if s.labels["uuid"] == str(on.uuid)]
    assert len(mine) == 1 and 0 <= mine[0].value <= 100
    assert mine[0].labels == {"uuid": str(on.uuid), "name": on.name, "host": test_host.name, "owner": "alice"}
    assert str(off.uuid) not in samples(fams, "kvmweb_vm_cpu_percent")  # shut off: no usage series
    assert samples(fams, "kvmweb_vm_vcpus")[str(on.uuid)] == 1
    for name in ("kvmweb_vm_disk_read_bytes_per_second", "kvmweb_vm_network_transmit_bytes_per_second",
                 "kvmweb_vm_cpu_host_percent", "kvmweb_vm_memory_bytes", "kvmweb_vm_sample_timestamp_seconds"):
        assert str(on.uuid) in samples(fams, name), name
    assert samples(fams, "kvmweb_host_collector_up")[test_host.name] == 1
    assert samples(fams, "kvmweb_host_cpus")[test_host.name] == 16


def test_staff_token_is_allowed(sampled, staff) -> None:  # type: ignore[no-untyped-def]
    secret = token_create(actor=staff, name="prometheus").secret
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200
    assert str(sampled[0].uuid) in samples(families(response.content), "kvmweb_vm_running")


def test_anonymous_is_refused(sampled) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/metrics")
    assert response.status_code in (401, 403)
    assert b"kvmweb_vm" not in response.content
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Token kvw_not-a-real-token").status_code == 401


def test_other_users_are_refused_even_the_owner(sampled, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    for user in (owner, other_user):
        client = Client()
        client.force_login(user)
        response = client.get("/metrics")
        assert response.status_code == 403 and b"kvmweb_vm" not in response.content
    secret = token_create(actor=owner, name="scraper").secret
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {secret}").status_code == 403


def test_without_a_collector_the_vms_show_as_not_running(owner, staff, test_host, stats_redis) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    services.vm_start(actor=owner, vm=vm)
    client = Client()
    client.force_login(staff)
    fams = families(client.get("/metrics").content)
    assert samples(fams, "kvmweb_vm_running")[str(vm.uuid)] == 0
    assert samples(fams, "kvmweb_host_collector_up")[test_host.name] == 0
    assert fams["kvmweb_vm_cpu_percent"].samples == []
