"""The hypervisor layer against libvirt's in-process test driver."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from tests.conftest import PREFIX, spec_testdrv

URI = "test:///default"


@pytest.fixture
def conn():  # type: ignore[no-untyped-def]
    c = hv.registry.connection(URI)
    yield c
    for row in hv.domain_list(c):
        if row.name.startswith(PREFIX):
            dom = hv.domain_lookup(c, row.uuid)
            if row.state.is_active:
                dom.destroy()
            dom.undefine()


def test_define_list_lifecycle(conn: hv.Connection) -> None:
    dom = hv.domain_define(conn, spec_testdrv(vcpus=2, memory_kib=512 * 1024))
    rows = {r.name: r for r in hv.domain_list(conn)}
    row = rows[dom.name]
    assert row.state is hv.DomainState.SHUTOFF and row.vcpus == 2 and row.max_memory_kib == 512 * 1024
    dom.start()
    assert dom.state() is hv.DomainState.RUNNING
    info = dom.info()
    assert info.id is not None and info.persistent and info.vcpus == 2
    dom.set_autostart(True)
    assert dom.info().autostart
    dom.destroy()
    assert dom.state() is hv.DomainState.SHUTOFF
    dom.undefine()
    with pytest.raises(hv.DomainNotFound):
        hv.domain_lookup(conn, dom.uuid)


def test_errors_are_translated(conn: hv.Connection) -> None:
    dom = hv.domain_define(conn, spec_testdrv())
    with pytest.raises(hv.OperationInvalid):
        dom.destroy()  # not running
    with pytest.raises(hv.DomainNotFound):
        hv.domain_lookup(conn, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(hv.DomainNotFound):
        hv.domain_lookup_by_name(conn, "no-such-domain")


def test_unreachable_host_is_host_unavailable() -> None:
    conn = hv.registry.connection("qemu+unix:///system?socket=/nonexistent/sock")
    with pytest.raises(hv.HostUnavailable):
        hv.domain_list(conn)


def test_list_calls_do_not_grow_with_domains_on_bulk_drivers(conn: hv.Connection) -> None:
    """On the test driver the bulk stats lack vcpu/memory (one info() per domain); the list still works."""
    for _ in range(5):
        hv.domain_define(conn, spec_testdrv())
    before = conn.calls
    rows = hv.domain_list(conn)
    assert len([r for r in rows if r.name.startswith(PREFIX)]) == 5
    assert conn.calls - before >= 1
    assert all(r.vcpus for r in rows)


def test_entries_by_state_and_summaries_of_a_page(conn: hv.Connection) -> None:
    """The cheap listing (no state read) and its state filters, libvirt's own (running, paused, shut off) and the
    "other" states (told apart by one stats call of those); a page's summaries carry state and sizes, in order, and
    leave out a domain undefined since the listing."""
    off, running, paused = (hv.domain_define(conn, spec_testdrv(vcpus=2)) for _ in range(3))
    running.start()
    paused.start()
    paused.suspend()

    def names(state: hv.DomainState | None = None) -> set[str]:
        return {e.name for e in hv.domain_entries(conn, state=state) if e.name.startswith(PREFIX)}

    assert names() == {off.name, running.name, paused.name}
    assert names(hv.DomainState.RUNNING) == {running.name}
    assert names(hv.DomainState.PAUSED) == {paused.name}
    assert names(hv.DomainState.SHUTOFF) == {off.name}
    assert names(hv.DomainState.CRASHED) == set()
    before = conn.calls
    hv.domain_entries(conn, state=hv.DomainState.BLOCKED)
    assert conn.calls - before == 1  # the "other" listing found none here: no stats call
    entries = sorted((e for e in hv.domain_entries(conn) if e.name.startswith(PREFIX)), key=lambda e: e.name)
    assert {e.name: e.active for e in entries} == {off.name: False, running.name: True, paused.name: True}
    off.undefine()
    rows = hv.domain_summaries(conn, entries)
    assert [r.name for r in rows] == [e.name for e in entries if e.name != off.name]
    states = {r.name: r.state for r in rows}
    assert states == {running.name: hv.DomainState.RUNNING, paused.name: hv.DomainState.PAUSED}
    assert all(r.vcpus == 2 and r.id is not None for r in rows)
    assert hv.domain_summaries(conn, []) == []


def test_block_devices_and_vnc_from_xml(conn: hv.Connection) -> None:
    doc = spec_testdrv(devices=(
        hv.Disk.new(target="vda", source="/tmp/x.qcow2"),
        hv.Disk.new(target="hdc", device="cdrom", bus="ide", source=None, format="raw"),
        hv.Graphics.vnc(listen="address", address="127.0.0.1", port=5905),
    ))
    dom = hv.domain_define(conn, doc)
    assert [(b.target, b.source, b.device) for b in (d.info() for d in dom.document().disks)] == [
        ("vda", "/tmp/x.qcow2", "disk"), ("hdc", None, "cdrom")]
    vnc = dom.document().vnc_display()
    assert vnc is not None and vnc.display == "127.0.0.1:5"


def test_editing_saves_the_full_definition_and_nothing_on_error(conn: hv.Connection) -> None:
    dom = hv.domain_define(conn, spec_testdrv(devices=(hv.Disk.new(target="vda", source="/tmp/x.qcow2"),)))
    with dom.editing() as doc:
        doc.add_device(hv.Disk.new(target="vdb", source="/tmp/y.qcow2"))
        doc.set_boot_order(["hd", "cdrom"])
    after = dom.definition()
    assert [d.target for d in after.disks] == ["vda", "vdb"] and after.boot_order == ["hd", "cdrom"]
    with pytest.raises(RuntimeError), dom.editing() as doc:
        doc.remove_device(doc.disk("vdb"))  # type: ignore[arg-type]
        raise RuntimeError("changed my mind")
    assert [d.target for d in dom.definition().disks] == ["vda", "vdb"]  # nothing was saved


def test_a_definition_only_replaces_its_own_domain(conn: hv.Connection) -> None:
    first, second = hv.domain_define(conn, spec_testdrv()), hv.domain_define(conn, spec_testdrv())
    with pytest.raises(hv.InvalidRequest, match="UUIDs differ"):
        first.redefine(second.definition())
