"""Real: backups on qemu:///system, run by a real Celery worker. A running TCG memtest guest is backed up through
libvirt's backup job (push mode) and keeps running; the backup restores as a new VM whose disk ``qemu-img compare``
finds identical to the backup's; a shut-off VM is backed up by a copy and restored over (with a disk that grew
meanwhile); retention keeps exactly N; nothing is left in the backup pool."""
from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from kvmweb import hypervisor as hv
from kvmweb.machines.services import vm_start
from kvmweb.protection.models import Backup, Retention
from tests.conftest import memtest_spec, unique_name, virsh
from tests.provisioning.helpers import wait_job

pytestmark = pytest.mark.real
M = 1024**2


def _disk_with_data(pool: dict[str, Any], size: str = "256M", pattern: str = "0x5a") -> str:
    """A qcow2 volume of the test pool with 8 MiB of ``pattern`` at its start (written before any guest opens it)."""
    name = f"{unique_name('bk')}.qcow2"
    virsh("vol-create-as", pool["name"], name, size, "--format", "qcow2")
    path = os.path.join(pool["path"], name)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} 0 8M", path], check=True,
                   capture_output=True)
    virsh("pool-refresh", pool["name"])
    return path


def _reads(path: str, pattern: str) -> bool:
    """Whether the first 8 MiB of the image hold ``pattern`` (qemu-io's own check)."""
    proc = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-U", "-c", f"read -P {pattern} 0 8M", path],
                          capture_output=True, text=True)
    return proc.returncode == 0 and "Pattern verification failed" not in proc.stdout + proc.stderr


def _compare(a: str, b: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-img", "compare", "-U", a, b], capture_output=True, text=True)


def _backup_pool_volumes() -> list[str]:
    from django.conf import settings

    return virsh("vol-list", settings.KVMWEB_BACKUP_POOL, check=False).split()[::2]


def _job(pk: int, *, timeout: float = 300) -> Any:
    job = wait_job(pk, timeout=timeout)
    assert job.state == "succeeded", (job.error, list(job.lines.values_list("message", flat=True)))
    return job


def test_live_backup_keeps_the_guest_running_and_restores_as_a_new_vm(  # type: ignore[no-untyped-def]
        transactional_db, open_pool, alice_api, real_vm, owner, cleanup_domains, celery_worker_proc) -> None:
    src = _disk_with_data(open_pool)
    vm = real_vm(memtest_spec(disk=src))
    vm_start(actor=owner, vm=vm)
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/backups/")
    assert reply.status_code == 202, reply.content
    job = _job(reply.json()["id"])
    assert virsh("domstate", vm.name).strip() == "running"  # the guest was never stopped
    backup = Backup.objects.get(pk=job.result["backup_id"])
    assert backup.state == Backup.State.COMPLETE and backup.live and backup.size > 8 * M
    assert [d["target"] for d in backup.disks] == ["vda"]  # the memtest CD-ROM is not backed up
    lines = " ".join(job.lines.values_list("message", flat=True))
    assert "push mode" in lines and "keeps running" in lines
    copy = backup.disks[0]["path"]
    assert _reads(copy, "0x5a")
    assert _compare(src, copy).returncode == 0  # memtest never writes its disk: the copy equals it
    assert "domainbackup" not in virsh("domjobinfo", vm.name)  # no job left running

    name = unique_name("restored")
    cleanup_domains.append(name)
    reply = alice_api.post(f"/api/v1/backups/{backup.pk}/restore/", {"mode": "new", "name": name}, format="json")
    assert reply.status_code == 202, reply.content
    restored = _job(reply.json()["id"])
    new_path = restored.result["volumes"][0]
    assert new_path.startswith(open_pool["path"]) and new_path in virsh("dumpxml", name)
    compare = _compare(new_path, copy)
    assert compare.returncode == 0 and "identical" in compare.stdout, compare
    assert restored.result["uuid"] != str(vm.uuid)
    assert virsh("domstate", vm.name).strip() == "running"

    assert alice_api.delete(f"/api/v1/backups/{backup.pk}/").status_code == 200
    assert not Backup.objects.filter(pk=backup.pk).exists()
    assert _backup_pool_volumes() == []
    virsh("undefine", name)
    virsh("vol-delete", new_path)


def test_copy_backup_restore_over_and_retention(  # type: ignore[no-untyped-def]
        transactional_db, open_pool, alice_api, real_vm, owner, celery_worker_proc) -> None:
    Retention.objects.create(user=owner, keep=2)  # the worker reads it (settings of this process it would not)
    src = _disk_with_data(open_pool, size="64M")
    vm = real_vm(memtest_spec(disk=src))
    first = _job(alice_api.post(f"/api/v1/vms/{vm.uuid}/backups/").json()["id"])
    backup = Backup.objects.get(pk=first.result["backup_id"])
    assert not backup.live and backup.state == Backup.State.COMPLETE
    assert _compare(src, backup.disks[0]["path"]).returncode == 0

    # the disk changes and grows after the backup; restoring over the VM brings the data back, at the new size
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x77 0 8M", src], check=True, capture_output=True)
    virsh("vol-resize", src, "96M")
    assert _reads(src, "0x77")
    url = f"/api/v1/backups/{backup.pk}/restore/"
    assert alice_api.post(url, {"mode": "over"}, format="json").status_code == 400  # not confirmed
    over = _job(alice_api.post(url, {"mode": "over", "confirm": True}, format="json").json()["id"])
    new_path = over.result["volumes"][0]
    assert new_path in virsh("dumpxml", vm.name) and src not in virsh("dumpxml", vm.name)
    assert not os.path.exists(src)  # the replaced volume is gone
    assert _reads(new_path, "0x5a")
    info = hv.registry.connection("qemu:///system")
    assert hv.volume_by_path(info, new_path).spec().capacity == 96 * M  # type: ignore[union-attr]

    # two more backups: retention keeps exactly the newest 2, the oldest one's volume goes with it
    ids = [backup.pk]
    for _ in range(2):
        job = _job(alice_api.post(f"/api/v1/vms/{vm.uuid}/backups/").json()["id"])
        ids.append(job.result["backup_id"])
    assert job.result["expired"] == [ids[0]]
    assert sorted(Backup.objects.filter(vm_uuid=vm.uuid).values_list("pk", flat=True)) == sorted(ids[1:])
    assert "Retention keeps the last 2" in " ".join(job.lines.values_list("message", flat=True))
    assert sorted(_backup_pool_volumes()) == sorted(b.disks[0]["volume"] for b in Backup.objects.all())
    for pk in ids[1:]:
        assert alice_api.delete(f"/api/v1/backups/{pk}/").status_code == 200
    assert _backup_pool_volumes() == []


def test_a_cancelled_live_backup_aborts_and_leaves_nothing(  # type: ignore[no-untyped-def]
        transactional_db, open_pool, real_vm, owner, monkeypatch) -> None:
    """Run in this process (no worker): the cancel is asked the moment libvirt's backup job has begun, so the job's
    first look sees it — it aborts libvirt's job (``virsh domjobabort``), its undo deletes the target volume, the
    row says failed, and the guest runs on."""
    from kvmweb.jobs.models import Job
    from kvmweb.jobs.runner import execute
    from kvmweb.jobs.services import job_start
    from kvmweb.protection import backups

    def queue_nowhere(**kw: Any) -> Job:  # the job row, not sent to any worker
        return Job.objects.create(kind=kw["kind"], title=kw["title"], target_type=kw["target_type"],
                                  target=kw["target"], host=kw["host"], actor=kw["actor"], params=kw["params"])

    monkeypatch.setattr(backups, "job_create", queue_nowhere)
    begin = hv.Domain.backup_begin

    def begin_then_cancel(self: hv.Domain, spec: hv.BackupSpec) -> None:
        begin(self, spec)
        Job.objects.filter(kind="backup.create").update(cancel_requested=True)

    monkeypatch.setattr(hv.Domain, "backup_begin", begin_then_cancel)
    src = _disk_with_data(open_pool, size="1G")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x33 8M 504M", src], check=True, capture_output=True)
    vm = real_vm(memtest_spec(disk=src))
    vm_start(actor=owner, vm=vm)
    job = backups.backup_create(actor=owner, vm=vm)
    started = job_start(job_id=job.pk, worker="test")
    assert started is not None
    execute(backups.backup_create_run, started)
    job = Job.objects.get(pk=job.pk)
    assert job.state == "cancelled", (job.state, job.error)
    assert Backup.objects.get(pk=job.params["backup_id"]).state == Backup.State.FAILED
    assert _backup_pool_volumes() == []  # the undo deleted the target volume
    assert virsh("domstate", vm.name).strip() == "running"
    assert "none" in virsh("domjobinfo", vm.name).lower()  # no job left behind in libvirt
    Backup.objects.all().delete()
