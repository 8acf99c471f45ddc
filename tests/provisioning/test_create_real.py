"""Real VM creation on qemu:///system (TCG memtest86+): through the API and a real Celery worker; a create that
fails half-way leaves nothing; a worker killed during a job leaves the job failed and undone."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from tests.conftest import ARTIFACTS, MEMTEST_ISO, unique_name, virsh
from tests.provisioning.helpers import stop, wait_job, wait_screen

pytestmark = [pytest.mark.real]


def _qemu_img_info(path: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _remove_volume(pool: str, name: str) -> None:
    virsh("vol-delete", name, "--pool", pool, check=False)


@pytest.mark.django_db(transaction=True)
def test_create_from_memtest_iso_through_api_and_worker(
    qemu_host, owner, memtest_iso, test_pool, open_test_pool, celery_worker_proc, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    name = unique_name("cre")
    cleanup_domains.append(name)
    qemu_host.domain_type = "qemu"  # memtest86+ needs TCG on these machines (HOST.md)
    qemu_host.save()
    client = Client()
    client.force_login(owner)
    try:
        response = client.post("/api/v1/vms/", {
            "host": qemu_host.pk, "name": name, "vcpus": 1, "memory": "96", "iso": memtest_iso.pk,
            "disk_size": "1", "disk_format": "qcow2", "disk_pool": test_pool["name"], "os_variant": "generic",
            "network": None, "start": True,
        }, content_type="application/json")
        assert response.status_code == 202, response.content
        body = response.json()
        job = wait_job(body["job"]["id"])
        assert job.state == Job.State.SUCCEEDED, job.error
        assert job.progress == 100
        assert [line.message for line in job.lines.all()][-1] == "Succeeded."
        assert virsh("domstate", name).strip() == "running"

        xml = virsh("dumpxml", name)
        doc = hv.DomainDocument.from_xml(xml)
        assert doc.vcpus == 1 and doc.memory_kib == 96 * 1024 and doc.domain_type == qemu_host.effective_domain_type
        disk = [d.info() for d in doc.disks if d.info().device == "disk"][0]
        cdrom = [d.info() for d in doc.disks if d.info().device == "cdrom"][0]
        assert disk.format == "qcow2" and disk.source == f"{test_pool['path']}/{name}.qcow2"
        assert cdrom.source == MEMTEST_ISO and cdrom.shared_media and cdrom.boot_order == 1
        assert "<listen type='none'/>" in xml
        assert disk.source is not None
        info = _qemu_img_info(disk.source)
        assert info["format"] == "qcow2" and info["virtual-size"] == 1024**3
        dom = hv.domain_lookup(hv.registry.connection("qemu:///system"), body["uuid"])
        png = wait_screen(dom)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "create-memtest-screen.png").write_bytes(png)
    finally:
        virsh("destroy", name, check=False)
        _remove_volume(test_pool["name"], f"{name}.qcow2")


@pytest.mark.django_db
def test_create_failing_after_the_disk_was_made_leaves_nothing(
    qemu_host, owner, staff, test_pool, open_test_pool, eager, django_capture_on_commit_callbacks, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    """The install medium vanishes between the request and the job: QEMU cannot start; the job undoes it all."""
    from kvmweb.provisioning.services import vm_create
    from kvmweb.media.services import iso_register

    folder = tempfile.mkdtemp(prefix="kvmwebtest-cre-iso-")
    os.chmod(folder, 0o755)
    iso_path = shutil.copy(MEMTEST_ISO, f"{folder}/vanishing.iso")
    iso = iso_register(actor=staff, host=qemu_host, path=iso_path)
    name = unique_name("fail")
    cleanup_domains.append(name)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            job = vm_create(actor=owner, host=qemu_host, name=name, memory="64", iso=iso.pk, disk_size="64M",
                            disk_pool=test_pool["name"], start=True).job
        assert name in virsh("list", "--all", "--name").split()
        os.unlink(iso_path)
        for callback in callbacks:
            callback()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert job.error
    log = "\n".join(line.message for line in job.lines.all())
    assert f"Rolled back: deleted the new volume {test_pool['path']}/{name}.qcow2" in log
    assert f"Rolled back: undefined the new domain {name}" in log
    assert name not in virsh("list", "--all", "--name").split()
    assert f"{name}.qcow2" not in virsh("vol-list", test_pool["name"])
    assert not os.path.exists(f"{test_pool['path']}/{name}.qcow2")


@pytest.mark.django_db(transaction=True)
def test_killed_worker_leaves_its_job_failed_and_undone(owner) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    from kvmweb.jobs.services import job_create
    from tests.live import ARTIFACTS, ROOT, server_env

    env = server_env()
    name = f"kill-{os.getpid()}@%h"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"celery-kill-{os.getpid()}.log", "ab")  # noqa: SIM115
    cmd = [sys.executable, "-m", "celery", "-A", "kvmweb", "worker", "--pool=solo", "--loglevel=INFO",
           "-Q", env["KVMWEB_CELERY_QUEUE"] + "-kill", "-n", name]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    worker = start()
    try:
        with transaction.atomic():
            job = job_create(actor=owner, kind="jobs.selftest", title="long",
                             queue=env["KVMWEB_CELERY_QUEUE"] + "-kill", params={"steps": 200, "pause": 0.2})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.state == Job.State.RUNNING and job.progress > 0:
                break
            time.sleep(0.1)
        assert job.state == Job.State.RUNNING, job.state
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        job.refresh_from_db()
        assert job.state == Job.State.RUNNING  # nobody knows yet
        worker = start()
        job = wait_job(job.pk, timeout=60)
        assert job.state == Job.State.FAILED
        assert "restarted while this job ran" in job.error
        assert any("Rolled back: the self-test's first step" in line.message for line in job.lines.all())
    finally:
        stop(worker)
        log.close()
