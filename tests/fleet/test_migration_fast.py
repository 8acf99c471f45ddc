"""Moving a VM, on libvirt's test driver: every refusal says why before anything starts (nothing changes), the
permission follows KVMWEB_MIGRATION_BY_OWNERS, a shut-off VM without disks moves offline (its record follows), and
maintenance/evacuate answer through the API. Live moves and disk copies: test_migration_real.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.jobs.models import Job
from kvmweb.machines import services
from kvmweb.machines.models import VirtualMachine
from tests.conftest import spec_testdrv, unique_name

MiB = 1024


def _vm(owner: Any, host: Any, **kw: Any) -> VirtualMachine:
    return services.vm_define(actor=owner, host=host, doc=spec_testdrv(**kw))


def _migrate(client: Any, vm: VirtualMachine, **body: Any) -> Any:
    return client.post(f"/api/v1/vms/{vm.uuid}/migrate/", body, format="json")


def _nothing_changed(vm: VirtualMachine, host: Any) -> None:
    vm.refresh_from_db()
    assert vm.host == host
    assert not Job.objects.filter(kind="vm.migrate").exists()
    assert hv.domain_lookup(hv.registry.connection(host.uri), str(vm.uuid)).state() == hv.DomainState.SHUTOFF


def test_only_staff_move_vms_unless_the_site_lets_owners(owner, test_host, small_host, alice_api, settings,  # type: ignore[no-untyped-def]
                                                         staff_api) -> None:
    vm = _vm(owner, test_host)
    reply = _migrate(alice_api, vm, host="small")
    assert reply.status_code == 403 and reply.json()["detail"] == "Only staff move virtual machines to another host."
    _nothing_changed(vm, test_host)
    settings.KVMWEB_MIGRATION_BY_OWNERS = True
    reply = _migrate(alice_api, vm, host="nowhere")  # past the permission check, into the checks of the request
    assert reply.status_code == 400 and reply.json()["fields"] == {"host": ["no such host"]}
    _nothing_changed(vm, test_host)


@pytest.mark.parametrize("body, status, words", [
    ({"host": "testdrv"}, 400, "is on testdrv already: choose another host"),
    ({"host": "small", "live": True}, 409, "is shut off: it moves offline"),
])
def test_refusals_of_the_request(owner, test_host, small_host, staff_api, body, status, words) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    reply = _migrate(staff_api, vm, **body)
    assert reply.status_code == status and words in reply.json()["detail"], reply.json()
    _nothing_changed(vm, test_host)


def test_refusals_of_the_destination(owner, test_host, small_host, staff_api) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host, memory_kib=2048 * MiB)
    reply = _migrate(staff_api, vm, host="small")
    assert reply.status_code == 409
    assert reply.json()["detail"] == (f"{vm.name} cannot move to small: not enough memory: 1.5 GiB free of 1.5 GiB "
                                      "x 1, needs 2 GiB.")
    reply = _migrate(staff_api, vm)  # any host: placement finds none
    assert reply.status_code == 409 and reply.json()["error"] == "no_host"
    assert "small: no — not enough memory" in reply.json()["detail"]
    assert "testdrv: no — the VM is there" in reply.json()["detail"]
    small_host.maintenance = True
    small_host.save()
    small = _vm(owner, test_host)
    reply = _migrate(staff_api, small, host=small_host.pk)
    assert reply.status_code == 409 and reply.json()["detail"] == f"{small.name} cannot move to small: in maintenance."
    _nothing_changed(vm, test_host)
    _nothing_changed(small, test_host)


def test_disks_the_destination_cannot_reach(owner, test_host, small_host, staff_api) -> None:  # type: ignore[no-untyped-def]
    conn = hv.registry.connection(test_host.uri)
    volume = hv.pool_lookup(conn, "default-pool").create_volume(
        hv.VolumeSpec(name=unique_name("disk"), capacity=1 << 20, format="qcow2"))
    try:
        vm = _vm(owner, test_host, devices=(hv.Disk.new(target="vda", source=volume.path),))
        reply = _migrate(staff_api, vm, host="small")
        assert reply.status_code == 409 and reply.json()["error"] == "disk_unreachable"
        assert reply.json()["detail"] == (f"small cannot reach the disk vda ({volume.path}): copy the disks, or keep "
                                          "them in a storage pool both hosts see.")
        reply = _migrate(staff_api, vm, host="small", copy_storage=True)
        assert reply.status_code == 409
        assert reply.json()["detail"] == ("small has no storage pool in /default-pool: a copy keeps the disk's path, "
                                          "so define one there first.")
        _nothing_changed(vm, test_host)
    finally:
        volume.delete()


WITH_POOL = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes><sockets>1</sockets><cores>2</cores>
    <threads>1</threads></cpu>
  <memory>1572864</memory>
  <pool type="dir"><name>images</name><uuid>35bb2ad9-388a-cdfe-461a-b8907f6e5301</uuid>
    <capacity>107374182400</capacity><allocation>0</allocation><available>107374182400</available>
    <target><path>/default-pool</path></target></pool>
</node>
"""


def test_a_cdrom_iso_the_destination_lacks(owner, test_host, staff_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host

    path = tmp_path / "pooled.xml"
    path.write_text(WITH_POOL)
    Host.objects.create(name="pooled", uri=f"test://{path}", detected_domain_type="test")
    conn = hv.registry.connection(test_host.uri)
    iso = hv.pool_lookup(conn, "default-pool").create_volume(
        hv.VolumeSpec(name=unique_name("media") + ".iso", capacity=1 << 20, format="raw"))
    try:
        vm = _vm(owner, test_host, devices=(hv.Disk.new(target="sda", device="cdrom", bus="sata", source=iso.path,
                                                        format="raw"),))
        reply = _migrate(staff_api, vm, host="pooled")
        assert reply.status_code == 409 and reply.json()["error"] == "cdrom_missing"
        assert reply.json()["detail"] == (f"pooled has no {iso.path} (the CD-ROM sda of {vm.name}): eject it first, "
                                          "or put the ISO there.")
        _nothing_changed(vm, test_host)
    finally:
        iso.delete()
        hv.registry.connection(f"test://{path}").close()


def test_a_shut_off_vm_moves_offline_and_its_record_follows(owner, staff, test_host, small_host, staff_api,  # type: ignore[no-untyped-def]
                                                            eager, django_capture_on_commit_callbacks) -> None:
    vm = _vm(owner, test_host)
    with django_capture_on_commit_callbacks(execute=True):
        reply = _migrate(staff_api, vm)  # any host: placement picks the only other one
    assert reply.status_code == 202, reply.content
    job = Job.objects.get(pk=reply.json()["id"])
    assert job.state == "succeeded", (job.error, list(job.lines.values_list("message", flat=True)))
    lines = " ".join(job.lines.values_list("message", flat=True))
    assert "Placed on small: it fits with the most memory left" in lines
    assert f"{vm.name} is on small now (definition moved" in lines
    vm.refresh_from_db()
    assert vm.host == small_host and vm.owner == owner
    assert hv.domain_lookup(hv.registry.connection(small_host.uri), str(vm.uuid)).name == vm.name
    with pytest.raises(hv.DomainNotFound):
        hv.domain_lookup(hv.registry.connection(test_host.uri), str(vm.uuid))
    assert AuditEntry.objects.filter(action="vm.migrate", ok=True, actor=staff).exists()


def test_maintenance_and_evacuate_through_the_api(owner, test_host, small_host, staff_api, alice_api) -> None:  # type: ignore[no-untyped-def]
    assert alice_api.post(f"/api/v1/hosts/{small_host.pk}/maintenance/", {"maintenance": True},
                          format="json").status_code == 403
    reply = staff_api.post(f"/api/v1/hosts/{small_host.pk}/evacuate/")
    assert reply.status_code == 409 and reply.json()["detail"].startswith("Put small into maintenance first")
    reply = staff_api.post(f"/api/v1/hosts/{small_host.pk}/maintenance/", {"maintenance": True}, format="json")
    assert reply.status_code == 200
    assert reply.json() == {"id": small_host.pk, "name": "small", "maintenance": True,
                            "detail": "small is in maintenance: it gets no new VMs."}
    small_host.refresh_from_db()
    assert small_host.maintenance
    assert AuditEntry.objects.filter(action="host.maintenance_on", ok=True).exists()
    reply = staff_api.post(f"/api/v1/hosts/{small_host.pk}/evacuate/")
    assert reply.status_code == 409 and reply.json() == {
        "error": "nothing_to_move", "detail": "No VM runs on small: nothing to move."}
    placement = staff_api.get("/api/v1/hosts/placement/?memory_mib=64&vcpus=1").json()
    assert placement["host"] == "testdrv"
    assert {"name": "small", "fits": False, "reason": "in maintenance"} in placement["hosts"]
    assert staff_api.get("/api/v1/hosts/placement/?memory_mib=0").status_code == 400
    reply = staff_api.post(f"/api/v1/hosts/{small_host.pk}/maintenance/", {"maintenance": False}, format="json")
    assert reply.json()["detail"] == "small is out of maintenance: it takes new VMs again."
