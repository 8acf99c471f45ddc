"""The VM list's records and libvirt, on libvirt's test driver: the list selector only reads and reports how the
records differ (``VmList.drift``); ``vm_records_sync`` writes, and cannot race ``vm_define``; the list's libvirt
calls per page do not grow with the number of VMs."""
from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kvmweb import hypervisor as hv
from kvmweb.machines import selectors, services
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import VmList, vm_list
from tests.conftest import PREFIX, spec_testdrv

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _conn(host) -> hv.Connection:  # type: ignore[no-untyped-def]
    return hv.registry.connection(host.uri)


def _read_only_list(**kwargs) -> VmList:  # type: ignore[no-untyped-def]
    """``vm_list(**kwargs)``, failing if it sent any write to the database."""
    with CaptureQueriesContext(connection) as queries:
        result = vm_list(**kwargs)
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]
    assert writes == [], f"vm_list wrote to the database: {writes}"
    return result


def _missing(result: VmList) -> set[str]:
    return {u for d in result.drift for u, _name in d.missing}


def _stale(result: VmList) -> set[str]:
    return {u for d in result.drift for u in d.stale}


# -- 1. the list never writes ----------------------------------------------------------------------------------
def test_domain_defined_outside_is_an_unowned_row_and_drift_until_the_sync(test_host, staff, owner) -> None:  # type: ignore[no-untyped-def]
    dom = hv.domain_define(_conn(test_host), spec_testdrv())  # as `virsh define` would: no record
    for _ in range(2):  # reading twice changes nothing: the first read did not record it either
        result = _read_only_list(actor=staff)
        rows = {r.uuid: r for r in result.rows}
        assert rows[dom.uuid].name == dom.name
        assert rows[dom.uuid].owner_id is None and rows[dom.uuid].owner_name is None
        assert dom.uuid in _missing(result)
        assert not VirtualMachine.objects.filter(uuid=dom.uuid).exists()
    assert dom.uuid not in [r.uuid for r in _read_only_list(actor=owner).rows]  # unowned VMs are staff's

    services.vm_records_sync(result.drift)
    record = VirtualMachine.objects.get(uuid=dom.uuid)
    assert record.owner_id is None and record.name == dom.name and record.host == test_host
    after = _read_only_list(actor=staff)
    assert dom.uuid not in _missing(after)  # in step now
    assert {r.uuid: r for r in after.rows}[dom.uuid].owner_id is None


def test_record_of_a_deleted_domain_is_stale_and_the_sync_drops_it(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    hv.domain_lookup(_conn(test_host), str(vm.uuid)).undefine()  # `virsh undefine`, outside the portal
    result = _read_only_list(actor=owner)
    assert result.rows == []
    assert _stale(result) == {str(vm.uuid)}
    assert VirtualMachine.objects.filter(pk=vm.pk).exists()  # the list only reported it
    services.vm_records_sync(result.drift)
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()


def test_sync_keeps_a_stale_reported_record_whose_domain_is_back(test_host, owner) -> None:  # type: ignore[no-untyped-def]
    """The domain is undefined, the list reports its record stale, then the domain is defined again (same UUID)
    before the sync runs: the sync looks again and keeps the record, owner included."""
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    conn = _conn(test_host)
    dom = hv.domain_lookup(conn, str(vm.uuid))
    doc = dom.definition()
    dom.undefine()
    result = _read_only_list(actor=owner)
    assert _stale(result) == {str(vm.uuid)}
    hv.domain_define(conn, doc)  # back before the sync
    services.vm_records_sync(result.drift)
    record = VirtualMachine.objects.get(pk=vm.pk)
    assert record.owner == owner
    assert [r.uuid for r in _read_only_list(actor=owner).rows] == [str(vm.uuid)]


# -- 2. vm_records_sync cannot race vm_define -------------------------------------------------------------------
def test_sync_between_define_and_claim_leaves_the_vm_to_its_owner(test_host, staff, owner) -> None:  # type: ignore[no-untyped-def]
    """vm_define's steps and a concurrent list + sync, interleaved: the domain is defined, a list read sees it
    without a record and the sync records it unowned, then vm_define claims its record."""
    conn = _conn(test_host)
    doc = spec_testdrv(uuid=str(uuid_mod.uuid4()))
    dom = hv.domain_define(conn, doc)  # vm_define's first step
    result = _read_only_list(actor=staff)  # someone's list page, meanwhile
    assert dom.uuid in _missing(result)
    services.vm_records_sync(result.drift)
    assert VirtualMachine.objects.get(uuid=dom.uuid).owner_id is None
    record = services.vm_record_claim(host=test_host, uuid=dom.uuid, name=dom.name, owner_id=owner.pk)  # step two
    assert record.owner == owner and str(record.uuid) == dom.uuid and record.host == test_host
    assert VirtualMachine.objects.filter(uuid=dom.uuid).count() == 1
    assert VirtualMachine.objects.get(uuid=dom.uuid).owner == owner
    assert hv.domain_exists(conn, dom.name)
    assert [r.uuid for r in vm_list(actor=owner).rows] == [dom.uuid]


def test_vm_define_survives_a_sync_right_after_its_domain_is_defined(test_host, staff, owner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same interleaving through vm_define itself: a list + sync runs the moment libvirt has the domain."""
    define = hv.domain_define
    synced: list[str] = []

    def define_then_someone_lists(conn: hv.Connection, doc: hv.DomainDocument) -> hv.Domain:
        dom = define(conn, doc)
        result = vm_list(actor=staff)
        assert dom.uuid in _missing(result)
        services.vm_records_sync(result.drift)
        synced.append(dom.uuid)
        return dom

    monkeypatch.setattr(hv, "domain_define", define_then_someone_lists)
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    assert synced == [str(vm.uuid)]
    assert vm.owner == owner
    assert VirtualMachine.objects.get(uuid=vm.uuid).owner == owner
    assert hv.domain_exists(_conn(test_host), vm.name)


def test_a_vm_defined_between_the_records_read_and_the_libvirt_listing_is_never_stale(test_host, staff, owner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """vm_list reads the records before it lists libvirt: a VM the portal defines in between is, at worst, a
    domain without a record (which the sync inserts without touching the owner's record) — never a stale record
    (which the sync would check and could drop)."""
    records = selectors._records
    defined: list[str] = []

    def records_then_someone_defines(**filters):  # type: ignore[no-untyped-def]
        found = records(**filters)
        if not defined:
            defined.append(str(services.vm_define(actor=owner, host=test_host, doc=spec_testdrv()).uuid))
        return found

    monkeypatch.setattr(selectors, "_records", records_then_someone_defines)
    result = vm_list(actor=staff)
    monkeypatch.undo()
    assert len(defined) == 1
    uuid = defined[0]
    assert uuid not in _stale(result)
    assert uuid in _missing(result)  # libvirt had it, the records read before did not
    assert uuid in [r.uuid for r in result.rows]
    services.vm_records_sync(result.drift)
    record = VirtualMachine.objects.get(uuid=uuid)
    assert record.owner == owner
    assert hv.domain_exists(_conn(test_host), record.name)
    assert [r.uuid for r in vm_list(actor=owner).rows] == [uuid]


# -- 3. libvirt calls per page ------------------------------------------------------------------------------------
def test_libvirt_calls_per_page_do_not_grow_with_the_number_of_vms(test_host, staff, settings) -> None:  # type: ignore[no-untyped-def]
    """The selector, the HTML page (and its live table) and the API: the same number of libvirt calls for a page of
    5 whether 10 or 60 VMs match."""
    conn = _conn(test_host)
    settings.KVMWEB_PAGE_SIZE = 5
    client = Client()
    client.force_login(staff)

    def counted(read: Callable[[], object]) -> int:
        before = conn.calls
        read()
        return conn.calls - before

    def selector() -> None:
        assert len(vm_list(actor=staff, name=f"{PREFIX}calls-", limit=5).rows) == 5

    def page() -> None:
        assert client.get("/vms/", {"name": f"{PREFIX}calls-"}).content.decode().count("<tr data-uuid=") == 5

    def table() -> None:  # what the live list asks for on an event
        response = client.get("/vms/", {"name": f"{PREFIX}calls-"}, HTTP_HX_REQUEST="true")
        assert response.content.decode().count("<tr data-uuid=") == 5

    def api() -> None:
        assert len(client.get("/api/v1/vms/", {"name": f"{PREFIX}calls-", "limit": 5}).json()["results"]) == 5

    reads = {"selector": selector, "page": page, "table": table, "api": api}
    for i in range(10):
        hv.domain_define(conn, spec_testdrv(name=f"{PREFIX}calls-{i:03d}"))
    few = {name: counted(read) for name, read in reads.items()}
    for i in range(10, 60):
        hv.domain_define(conn, spec_testdrv(name=f"{PREFIX}calls-{i:03d}"))
    assert {name: counted(read) for name, read in reads.items()} == few
    # and no more than the listing, the page's bulk state and size read and (the test driver's bulk stats carry no
    # sizes) one info() per row shown
    assert few["selector"] <= 1 + 1 + 5
    assert few["api"] == few["table"] == few["selector"]
