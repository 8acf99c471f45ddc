"""1000 VMs on libvirt's test driver: the list stays one bulk call per host, and the page shows 50 rows."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.machines.selectors import vm_list, vm_rows_sized
from tests.conftest import PREFIX

pytestmark = pytest.mark.django_db

N = 1000


@pytest.fixture
def thousand(test_host):  # type: ignore[no-untyped-def]
    conn = hv.registry.connection(test_host.uri)
    for i in range(N):
        hv.define(conn, hv.DomainSpec(name=f"{PREFIX}scale-{i:04d}", domain_type="test", memory_kib=65536))
    return conn


def test_list_of_1000_is_one_call_and_pages(thousand, staff) -> None:  # type: ignore[no-untyped-def]
    conn = thousand
    vm_list(actor=staff, sizes=False)  # records the unowned VMs
    before = conn.calls
    rows = vm_list(actor=staff, sizes=False).rows
    assert conn.calls - before == 1
    assert len([r for r in rows if r.name.startswith(PREFIX)]) == N
    page = vm_rows_sized(rows[:50])
    assert all(r.summary.vcpus == 1 and r.summary.max_memory_kib == 65536 for r in page)

    client = Client()
    client.force_login(staff)
    html = client.get("/vms/?name=scale").content.decode()
    assert "Page 1 of 20" in html and html.count("<tr data-uuid=") == 50
    html = client.get("/vms/?name=scale&page=20").content.decode()
    assert f"{PREFIX}scale-0999" in html
