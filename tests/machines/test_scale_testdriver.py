"""1000 VMs on libvirt's test driver: the list stays one bulk call per host, and the page shows 50 rows."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.machines.selectors import vm_list
from tests.conftest import PREFIX, spec_testdrv

pytestmark = pytest.mark.django_db

N = 1000


@pytest.fixture
def thousand(test_host):  # type: ignore[no-untyped-def]
    conn = hv.registry.connection(test_host.uri)
    for i in range(N):
        hv.domain_define(conn, spec_testdrv(name=f"{PREFIX}scale-{i:04d}", memory_kib=65536))
    return conn


def test_list_of_1000_is_one_call_and_pages(thousand, staff) -> None:  # type: ignore[no-untyped-def]
    conn = thousand
    # Listing every domain, without sizes for any row, is one bulk libvirt call whatever the number of domains.
    before = conn.calls
    everything = vm_list(actor=staff, limit=0)
    assert conn.calls - before == 1
    assert everything.rows == [] and everything.total >= N
    # A page of 50 adds the sizes of its 50 rows only: one bulk stats call, plus (the test driver's bulk stats
    # carry no vCPU/memory) one info() per row of the page — never one per listed domain.
    before = conn.calls
    result = vm_list(actor=staff, name="scale", limit=50)
    assert conn.calls - before == 1 + 1 + 50
    assert result.total == N and len(result.rows) == 50
    assert all(r.name.startswith(PREFIX) for r in result.rows)
    assert all(r.vcpus == 1 and r.max_memory_kib == 65536 for r in result.rows)
    before = conn.calls
    last = vm_list(actor=staff, name="scale", offset=950, limit=50)
    assert conn.calls - before == 1 + 1 + 50  # the last page costs the same as the first
    assert [r.name for r in last.rows][-1] == f"{PREFIX}scale-0999"

    client = Client()
    client.force_login(staff)
    html = client.get("/vms/?name=scale").content.decode()
    assert "Page 1 of 20" in html and html.count("<tr data-uuid=") == 50
    html = client.get("/vms/?name=scale&page=20").content.decode()
    assert f"{PREFIX}scale-0999" in html
