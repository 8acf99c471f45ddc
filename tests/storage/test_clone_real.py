"""Real: clone a VM as a Job run by a real Celery worker; check the result with virsh and qemu-img."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from kvmweb.machines.models import VirtualMachine
from tests.conftest import ARTIFACTS, PREFIX, memtest_spec, unique_name, virsh
from tests.provisioning.helpers import wait_job
from tests.live import ROOT, server_env
from tests.storage.conftest import qemu_img_info

pytestmark = pytest.mark.real
G = 1024**3


def source_vm(real_vm, pool: dict, *, data_mib: int = 64, size: str = "1G"):  # type: ignore[no-untyped-def]
    """A shut-off guest with a qcow2 disk holding data, a shared ISO and a NIC (never started)."""
    disk = f"{unique_name('src')}.qcow2"
    virsh("vol-create-as", pool["name"], disk, size, "--format", "qcow2")
    path = os.path.join(pool["path"], disk)
    if data_mib:
        subprocess.run(["qemu-io", "-c", f"write -P 0x5a 0 {data_mib}M", path], check=True, capture_output=True)
        virsh("pool-refresh", pool["name"])
    doc = memtest_spec(disk=path)
    doc.add_device(hv.Interface.new(network=f"{PREFIX}never-started"))
    return real_vm(doc), path


def _mac(xml: str) -> str:
    found = re.search(r"<mac address='([0-9a-f:]+)'/>", xml)
    assert found
    return found.group(1)


def _uuid(xml: str) -> str:
    found = re.search(r"<uuid>([0-9a-f-]+)</uuid>", xml)
    assert found
    return found.group(1)


def test_full_clone(transactional_db, open_pool, alice_api, real_vm, owner, cleanup_domains,  # type: ignore[no-untyped-def]
                    celery_worker_proc) -> None:
    vm, src_path = source_vm(real_vm, open_pool)
    name = unique_name("clone")
    cleanup_domains.append(name)
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": name, "mode": "full"}, format="json")
    assert reply.status_code == 202, reply.content
    job = wait_job(reply.json()["id"])
    assert job.state == "succeeded", (job.error, list(job.lines.values_list("message", flat=True)))
    assert job.progress == 100
    src_xml, new_xml = virsh("dumpxml", vm.name), virsh("dumpxml", name)
    assert _uuid(src_xml) != _uuid(new_xml) and _mac(src_xml) != _mac(new_xml)
    new_path = os.path.join(open_pool["path"], f"{name}.qcow2")
    assert new_path in new_xml and src_path not in new_xml
    assert "/usr/lib/memtest86+/memtest86+x64.iso" in new_xml  # the ISO stays shared
    compare = subprocess.run(["qemu-img", "compare", src_path, new_path], capture_output=True, text=True)
    assert compare.returncode == 0 and "identical" in compare.stdout
    assert qemu_img_info(new_path).get("backing-filename") is None  # a full, independent copy
    record = VirtualMachine.objects.get(name=name)
    assert record.owner == owner and str(record.uuid) == job.result["uuid"]
    assert any("Copying vda" in m for m in job.lines.values_list("message", flat=True))
    virsh("undefine", name)
    virsh("vol-delete", new_path)


def test_linked_clone(transactional_db, open_pool, alice_api, real_vm, cleanup_domains,  # type: ignore[no-untyped-def]
                      celery_worker_proc) -> None:
    vm, src_path = source_vm(real_vm, open_pool, data_mib=8)
    name = unique_name("link")
    cleanup_domains.append(name)
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": name, "mode": "linked"}, format="json")
    assert reply.status_code == 202, reply.content
    job = wait_job(reply.json()["id"])
    assert job.state == "succeeded", job.error
    new_path = os.path.join(open_pool["path"], f"{name}.qcow2")
    chain = qemu_img_info(new_path, "--backing-chain")
    assert [c["filename"] for c in chain] == [new_path, src_path]
    assert subprocess.run(["qemu-img", "compare", src_path, new_path], capture_output=True).returncode == 0
    # the source's disk now backs the clone: deleting it is refused while the source uses it
    virsh("undefine", name)
    virsh("vol-delete", new_path)


def test_clone_refusals(open_pool, alice_api, bob_api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    url = f"/api/v1/vms/{vm.uuid}/clone/"
    assert bob_api.post(url, {"name": "x"}, format="json").status_code == 404
    for bad in ["a/b", "a b", "<x>", "x" * 70]:
        reply = alice_api.post(url, {"name": bad}, format="json")
        assert reply.status_code == 400, (bad, reply.content)
    reply = alice_api.post(url, {"name": vm.name}, format="json")
    assert reply.status_code == 409 and "already exists" in reply.json()["detail"]
    assert Job.objects.count() == 0


def _worker(name: str, queue: str, log_name: str) -> subprocess.Popen[bytes]:
    env = server_env()
    env["KVMWEB_CELERY_QUEUE"] = queue
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / log_name).open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "kvmweb", "worker", "--pool=solo", "--loglevel=INFO", "-Q", queue,
             "-n", name], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def test_killed_worker_leaves_no_partial_volume(transactional_db, open_pool, alice_api, real_vm,  # type: ignore[no-untyped-def]
                                                cleanup_domains, monkeypatch) -> None:
    """SIGKILL the worker in the middle of a full clone: once a worker is back, the job is failed and neither the
    new volume nor the new domain exists."""
    from kvmweb.storage import tasks

    queue = f"{PREFIX}kill-{os.getpid()}"
    worker_name = f"{PREFIX}kill-{os.getpid()}@localhost"
    send = tasks.clone_vm.apply_async
    monkeypatch.setattr(tasks.clone_vm, "apply_async", lambda *a, **kw: send(*a, **{**kw, "queue": queue}))
    vm, _src = source_vm(real_vm, open_pool, data_mib=1536, size="2G")
    name = unique_name("killed")
    cleanup_domains.append(name)
    new_path = os.path.join(open_pool["path"], f"{name}.qcow2")
    first = _worker(worker_name, queue, f"celery-sto-kill-{os.getpid()}-1.log")
    second = None
    try:
        reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": name}, format="json")
        assert reply.status_code == 202, reply.content
        pk = reply.json()["id"]
        deadline = time.monotonic() + 60
        while not Job.objects.get(pk=pk).lines.filter(message__startswith="Copying").exists():
            assert time.monotonic() < deadline, "the copy never started"
            assert Job.objects.get(pk=pk).state in ("queued", "running")
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        assert Job.objects.get(pk=pk).state == "running"  # nobody is left to say otherwise
        second = _worker(worker_name, queue, f"celery-sto-kill-{os.getpid()}-2.log")
        job = wait_job(pk, timeout=180)
        assert job.state == "failed" and "restarted" in job.error, job.error
        assert not os.path.exists(new_path)
        assert name not in virsh("list", "--all", "--name").split()
        assert not VirtualMachine.objects.filter(name=name).exists()
        assert f"{name}.qcow2" not in virsh("vol-list", open_pool["name"])
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        virsh("vol-delete", new_path, check=False)


def test_cancel_during_full_clone_removes_everything(transactional_db, open_pool, alice_api, real_vm,  # type: ignore[no-untyped-def]
                                                     cleanup_domains, celery_worker_proc) -> None:
    vm, _src = source_vm(real_vm, open_pool, data_mib=512)
    name = unique_name("cancel")
    cleanup_domains.append(name)
    new_path = os.path.join(open_pool["path"], f"{name}.qcow2")
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": name}, format="json")
    assert reply.status_code == 202, reply.content
    pk = reply.json()["id"]
    deadline = time.monotonic() + 60
    while not Job.objects.get(pk=pk).lines.filter(message__startswith="Copying").exists():
        assert time.monotonic() < deadline and Job.objects.get(pk=pk).state in ("queued", "running")
        time.sleep(0.02)
    assert alice_api.post(f"/api/v1/jobs/{pk}/cancel/").status_code in (200, 202)
    job = wait_job(pk)
    assert job.state == "cancelled", (job.state, job.error)
    messages = list(job.lines.values_list("message", flat=True))
    assert any(m.startswith("Rolled back: delete the new volume") for m in messages), messages
    assert not os.path.exists(new_path)
    assert name not in virsh("list", "--all", "--name").split()
    assert not VirtualMachine.objects.filter(name=name).exists()


def test_running_source_is_paused_only_when_confirmed(transactional_db, open_pool, alice_api, real_vm,  # type: ignore[no-untyped-def]
                                                      cleanup_domains, celery_worker_proc) -> None:
    vm, src_path = source_vm(real_vm, open_pool, data_mib=16, size="64M")
    spec_xml = virsh("dumpxml", vm.name, "--inactive")
    assert "<interface" in spec_xml
    # the NIC's network does not exist: start a copy of the VM without it
    virsh("detach-interface", vm.name, "network", "--config")
    virsh("start", vm.name)
    name = unique_name("paused")
    cleanup_domains.append(name)
    url = f"/api/v1/vms/{vm.uuid}/clone/"
    reply = alice_api.post(url, {"name": name}, format="json")
    assert reply.status_code == 409 and "pausing" in reply.json()["detail"]
    reply = alice_api.post(url, {"name": name, "mode": "linked", "pause_source": True}, format="json")
    assert reply.status_code == 409 and "linked" in reply.json()["detail"]
    reply = alice_api.post(url, {"name": name, "pause_source": True}, format="json")
    assert reply.status_code == 202, reply.content
    job = wait_job(reply.json()["id"])
    messages = list(job.lines.values_list("message", flat=True))
    assert job.state == "succeeded", (job.error, messages)
    assert any(m.startswith("Paused") for m in messages) and any(m.startswith("Resumed") for m in messages)
    assert virsh("domstate", vm.name).strip() == "running"
    virsh("destroy", vm.name)
    new_path = os.path.join(open_pool["path"], f"{name}.qcow2")
    assert subprocess.run(["qemu-img", "compare", src_path, new_path], capture_output=True).returncode == 0
    virsh("undefine", name)
    virsh("vol-delete", new_path)
