"""Backups on libvirt's test driver (it has no backup job, so the live path is in test_backups_real.py): the typed
``<domainbackup>``, what a domain job's statistics say, planning and queueing a backup, retention, restore refusals,
permissions and the API's answers."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import libvirt
import pytest
from django.utils import timezone

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.jobs.models import Job
from kvmweb.machines import services as vm_services
from kvmweb.protection import backups, selectors
from kvmweb.protection.models import Backup, Retention
from tests.conftest import spec_testdrv, unique_name

pytestmark = pytest.mark.django_db
POOL = "default-pool"  # the test driver's pool


# ------------------------------------------------------------------------------------------------ hypervisor layer
def test_backup_spec_renders_push_mode_with_skipped_disks() -> None:
    spec = hv.BackupSpec(targets=(hv.BackupTarget(disk="vda", file="/b/x.vda.qcow2"),
                                  hv.BackupTarget(disk="vdb", file="/b/x.vdb.raw", format="raw")), skip=("vdc",))
    xml = spec.to_xml()
    assert "<domainbackup mode=\"push\">" in xml.replace("'", '"')
    assert hv.BackupSpec.from_xml(xml) == spec
    assert "backup=\"no\"" in xml.replace("'", '"')


@pytest.mark.parametrize("spec", [
    hv.BackupSpec(targets=()),
    hv.BackupSpec(targets=(hv.BackupTarget(disk="vda", file="relative.qcow2"),)),
    hv.BackupSpec(targets=(hv.BackupTarget(disk="vda", file="/a", format="vmdk"),)),
    hv.BackupSpec(targets=(hv.BackupTarget(disk="vda", file="/a"),), skip=("vda",)),
])
def test_backup_spec_refuses_what_libvirt_would(spec: hv.BackupSpec) -> None:
    with pytest.raises(hv.InvalidRequest):
        spec.to_xml()


def test_a_target_file_path_stays_an_attribute() -> None:
    """A hostile file name never becomes markup."""
    spec = hv.BackupSpec(targets=(hv.BackupTarget(disk="vda", file="/b/<x>&'\".qcow2"),))
    assert hv.BackupSpec.from_xml(spec.to_xml()).targets[0].file == "/b/<x>&'\".qcow2"


def test_job_stats_as_domjobinfo_reads_them() -> None:
    from kvmweb.hypervisor.backups import parse_job_stats

    assert parse_job_stats({"type": libvirt.VIR_DOMAIN_JOB_NONE}) is None
    running = parse_job_stats({"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "operation": 9, "disk_total": 200,
                               "disk_processed": 50})
    assert running is not None and running.active and running.operation == "backup" and running.percent == 25
    assert running.success is None
    done = parse_job_stats({"type": libvirt.VIR_DOMAIN_JOB_COMPLETED, "operation": 9, "success": True,
                            "disk_total": 8, "disk_processed": 8})
    assert done is not None and not done.active and done.success is True
    failed = parse_job_stats({"type": libvirt.VIR_DOMAIN_JOB_FAILED, "operation": 9, "errmsg": "no space"})
    assert failed is not None and failed.success is False and failed.error == "no space"


# ------------------------------------------------------------------------------------------------ services
def _vm(owner: Any, host: Any, *, cdrom: bool = True) -> Any:
    conn = hv.registry.connection(host.uri)
    volume = hv.pool_lookup(conn, POOL).create_volume(hv.VolumeSpec(name=unique_name("disk"), capacity=1 << 20))
    devices: tuple[object, ...] = (hv.Disk.new(target="vda", source=volume.path),)
    if cdrom:
        devices += (hv.Disk.new(target="sda", device="cdrom", bus="sata"),)
    return vm_services.vm_define(actor=owner, host=host, doc=spec_testdrv(devices=devices))


def _complete(vm: Any, *, owner: Any, age_minutes: int, pool: str = "kvmweb-backups") -> Backup:
    backup = Backup.objects.create(host=vm.host, vm_uuid=vm.uuid, vm_name=vm.name, owner=owner, made_by=owner,
                                   pool=pool, state=Backup.State.COMPLETE, disks=[], definition="<domain/>",
                                   finished=timezone.now())
    Backup.objects.filter(pk=backup.pk).update(created=timezone.now() - timedelta(minutes=age_minutes))
    backup.refresh_from_db()
    return backup


def test_backup_of_a_shut_off_vm_is_queued_as_a_copy(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    job = backups.backup_create(actor=owner, vm=vm)
    assert job.kind == "backup.create" and job.target == str(vm.uuid)
    backup = Backup.objects.get(pk=job.params["backup_id"])
    assert backup.state == Backup.State.RUNNING and not backup.live and backup.owner == owner
    assert [d["target"] for d in backup.disks] == ["vda"]  # the CD-ROM is left out
    assert backup.disks[0]["volume"].startswith(f"{vm.name}.") and backup.disks[0]["volume"].endswith(".vda.qcow2")
    assert AuditEntry.objects.filter(action="vm.backup", ok=True).exists()
    with pytest.raises(ConflictError):  # one at a time
        backups.backup_create(actor=owner, vm=vm)


def test_a_vm_without_disks_is_refused_before_anything(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = vm_services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(
        devices=(hv.Disk.new(target="sda", device="cdrom", bus="sata"),)))
    with pytest.raises(ValidationError, match="no disk to back up"):
        backups.backup_create(actor=owner, vm=vm)
    assert not Backup.objects.exists() and not Job.objects.exists()


def test_others_and_viewers_may_not_back_up(owner, other_user, django_user_model, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    with pytest.raises(NotFoundError):
        backups.backup_create(actor=other_user, vm=vm)
    carol = django_user_model.objects.create_user(username="carol")
    vm_services.vm_share(actor=owner, vm=vm, user=carol, role="operator")
    with pytest.raises(PermissionDeniedError):
        backups.backup_create(actor=carol, vm=vm)
    assert not Backup.objects.exists()


def test_retention_keeps_the_newest_n(owner, test_host, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_BACKUP_KEEP = 2
    vm = _vm(owner, test_host)
    rows = [_complete(vm, owner=owner, age_minutes=m) for m in (40, 30, 20, 10)]
    failed = Backup.objects.create(host=test_host, vm_uuid=vm.uuid, vm_name=vm.name, pool="kvmweb-backups",
                                   state=Backup.State.FAILED, disks=[], definition="")
    expired = backups.backup_retention_apply(backup=rows[-1], actor=owner)
    assert sorted(expired) == sorted([rows[0].pk, rows[1].pk])
    left = set(Backup.objects.values_list("pk", flat=True))
    assert left == {rows[2].pk, rows[3].pk, failed.pk}  # failed ones are not counted (nor expired) by retention
    assert AuditEntry.objects.filter(action="backup.expire", ok=True).count() == 2


def test_keep_comes_from_the_user_then_the_pool_then_the_setting(owner, test_host, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_BACKUP_KEEP = 7
    vm = _vm(owner, test_host)
    backup = _complete(vm, owner=owner, age_minutes=1)
    assert selectors.backup_keep(backup) == 7
    Retention.objects.create(host=test_host, pool="kvmweb-backups", keep=4)
    assert selectors.backup_keep(backup) == 4
    Retention.objects.create(user=owner, keep=2)
    assert selectors.backup_keep(backup) == 2


def test_only_staff_set_retention(owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDeniedError):
        backups.backup_retention_set(actor=owner, keep=3, user_id=owner.pk)
    with pytest.raises(ValidationError):
        backups.backup_retention_set(actor=staff, keep=0, user_id=owner.pk)
    with pytest.raises(ValidationError):
        backups.backup_retention_set(actor=staff, keep=3)  # neither user nor pool
    rule = backups.backup_retention_set(actor=staff, keep=3, user_id=owner.pk)
    assert backups.backup_retention_set(actor=staff, keep=5, user_id=owner.pk).pk == rule.pk
    assert Retention.objects.get(pk=rule.pk).keep == 5
    assert backups.backup_retention_set(actor=staff, keep=9, host=test_host, pool="p").keep == 9


def test_restore_refusals_change_nothing(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    backup = _complete(vm, owner=owner, age_minutes=1)
    with pytest.raises(ValidationError):
        backups.backup_restore(actor=owner, backup=backup, mode="sideways")
    with pytest.raises(ValidationError):
        backups.backup_restore(actor=owner, backup=backup, mode="over")  # not confirmed
    vm_services.vm_start(actor=owner, vm=vm)
    with pytest.raises(ConflictError, match="shut it off"):
        backups.backup_restore(actor=owner, backup=backup, mode="over", confirm=True)
    with pytest.raises(ValidationError):
        backups.backup_restore(actor=owner, backup=backup, mode="new", name="")
    with pytest.raises(ConflictError, match="already exists"):
        backups.backup_restore(actor=owner, backup=backup, mode="new", name=vm.name)
    running = Backup.objects.create(host=test_host, vm_uuid=vm.uuid, vm_name=vm.name, pool="kvmweb-backups",
                                    owner=owner, disks=[], definition="")
    with pytest.raises(ConflictError, match="complete"):
        backups.backup_restore(actor=owner, backup=running, mode="new", name=unique_name("r"))
    assert not Job.objects.exists()


def test_a_deleted_vms_backups_are_its_owners_and_staffs(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    backup = _complete(vm, owner=owner, age_minutes=1)
    vm_services.vm_delete(actor=owner, vm=vm)
    assert selectors.backup_get(actor=owner, pk=backup.pk, action=hv_manage()).pk == backup.pk
    assert selectors.backup_get(actor=staff, pk=backup.pk).pk == backup.pk
    with pytest.raises(NotFoundError):
        selectors.backup_get(actor=other_user, pk=backup.pk)
    assert [b.pk for b in selectors.backup_orphans(actor=owner)] == [backup.pk]
    assert selectors.backup_orphans(actor=other_user) == []


def hv_manage() -> Any:
    from kvmweb.access.permissions import VmAction

    return VmAction.MANAGE


def test_delete_removes_the_row_and_is_audited(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    backup = _complete(vm, owner=owner, age_minutes=1)
    result = backups.backup_delete(actor=owner, backup=backup)
    assert "deleted" in result.message and not Backup.objects.exists()
    assert AuditEntry.objects.filter(action="backup.delete", ok=True).exists()


# ------------------------------------------------------------------------------------------------ API
def test_api_lists_and_queues(owner, test_host, alice_api, bob_api) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    old = _complete(vm, owner=owner, age_minutes=5)
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/backups/")
    assert reply.status_code == 202, reply.content
    assert Job.objects.get(pk=reply.json()["id"]).kind == "backup.create"
    listed = alice_api.get(f"/api/v1/vms/{vm.uuid}/backups/").json()
    assert [b["state"] for b in listed] == ["running", "complete"] and listed[1]["id"] == old.pk
    assert alice_api.get(f"/api/v1/backups/{old.pk}/").json()["vm"]["name"] == vm.name
    assert bob_api.get(f"/api/v1/backups/{old.pk}/").status_code == 404
    assert bob_api.delete(f"/api/v1/backups/{old.pk}/").status_code == 404
    assert bob_api.post(f"/api/v1/vms/{vm.uuid}/backups/").status_code == 404


def test_api_restore_answers_in_words(owner, test_host, alice_api) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    backup = _complete(vm, owner=owner, age_minutes=1)
    url = f"/api/v1/backups/{backup.pk}/restore/"
    bad = alice_api.post(url, {"mode": "nope"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    unconfirmed = alice_api.post(url, {"mode": "over"}, format="json")
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.json()["fields"]
    vm_services.vm_start(actor=owner, vm=vm)
    running = alice_api.post(url, {"mode": "over", "confirm": True}, format="json")
    assert running.status_code == 409 and running.json()["error"] == "vm_running"
    assert not Job.objects.exists()


def test_api_retention_is_staffs(owner, staff, alice_api, staff_api) -> None:  # type: ignore[no-untyped-def]
    assert alice_api.get("/api/v1/backup-retention/").status_code == 403
    assert alice_api.post("/api/v1/backup-retention/", {"keep": 2, "user": owner.pk}, format="json").status_code == 403
    made = staff_api.post("/api/v1/backup-retention/", {"keep": 2, "user": owner.pk}, format="json")
    assert made.status_code == 201 and made.json()["keep"] == 2
    assert staff_api.get("/api/v1/backup-retention/").json()[0]["username"] == "alice"
    bad = staff_api.post("/api/v1/backup-retention/", {"keep": 0, "user": owner.pk}, format="json")
    assert bad.status_code == 400
    assert alice_api.delete(f"/api/v1/backup-retention/{made.json()['id']}/").status_code == 403
    assert staff_api.delete(f"/api/v1/backup-retention/{made.json()['id']}/").status_code == 204
    assert not Retention.objects.exists()


def test_the_vm_page_section_shows_buttons_by_role(owner, django_user_model, test_host, client) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host)
    _complete(vm, owner=owner, age_minutes=1)
    client.force_login(owner)
    page = client.get(f"/protection/vms/{vm.uuid}/backups/", HTTP_HX_REQUEST="true").content.decode()
    assert "Back up now" in page and "Restore as new VM" in page and "Restore over this VM" in page
    detail = client.get(f"/vms/{vm.uuid}/").content.decode()
    assert 'href="#vm-backups"' in detail and f"/protection/vms/{vm.uuid}/backups/" in detail
    carol = django_user_model.objects.create_user(username="carol")
    vm_services.vm_share(actor=owner, vm=vm, user=carol, role="viewer")
    client.force_login(carol)
    page = client.get(f"/protection/vms/{vm.uuid}/backups/", HTTP_HX_REQUEST="true").content.decode()
    assert "copy (shut off)" in page and "Back up now" not in page and "Restore" not in page
