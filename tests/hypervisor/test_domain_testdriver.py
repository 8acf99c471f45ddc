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
    for row in hv.list_domains(c):
        if row.name.startswith(PREFIX):
            dom = hv.lookup(c, row.uuid)
            if row.state.is_active:
                dom.destroy()
            dom.undefine()


def test_define_list_lifecycle(conn: hv.Connection) -> None:
    dom = hv.define(conn, spec_testdrv(vcpus=2, memory_kib=512 * 1024))
    rows = {r.name: r for r in hv.list_domains(conn)}
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
        hv.lookup(conn, dom.uuid)


def test_errors_are_translated(conn: hv.Connection) -> None:
    dom = hv.define(conn, spec_testdrv())
    with pytest.raises(hv.OperationInvalid):
        dom.destroy()  # not running
    with pytest.raises(hv.DomainNotFound):
        hv.lookup(conn, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(hv.DomainNotFound):
        hv.lookup_by_name(conn, "no-such-domain")


def test_unreachable_host_is_host_unavailable() -> None:
    conn = hv.registry.connection("qemu+unix:///system?socket=/nonexistent/sock")
    with pytest.raises(hv.HostUnavailable):
        hv.list_domains(conn)


def test_list_calls_do_not_grow_with_domains_on_bulk_drivers(conn: hv.Connection) -> None:
    """On the test driver the bulk stats lack vcpu/memory (one info() per domain); the list still works."""
    for _ in range(5):
        hv.define(conn, spec_testdrv())
    before = conn.calls
    rows = hv.list_domains(conn)
    assert len([r for r in rows if r.name.startswith(PREFIX)]) == 5
    assert conn.calls - before >= 1
    assert all(r.vcpus for r in rows)


def test_block_devices_and_vnc_from_xml(conn: hv.Connection) -> None:
    spec = spec_testdrv(
        disks=(hv.DiskSpec(target="vda", source="/tmp/x.qcow2"),
               hv.DiskSpec(target="hdc", device="cdrom", bus="ide", source=None, format="raw")),
        graphics=(hv.GraphicsSpec(listen="address", address="127.0.0.1", port=5905),),
    )
    dom = hv.define(conn, spec)
    assert [(b.target, b.source, b.device) for b in dom.block_devices()] == [
        ("vda", "/tmp/x.qcow2", "disk"), ("hdc", None, "cdrom")]
    vnc = dom.vnc()
    assert vnc is not None and vnc.display == "127.0.0.1:5"
