"""Real: moving TCG guests between qemu:///system and a second, independent libvirtd (tests/secondhost.py).

A running guest moves live there (placed: "any host") and back (chosen), its record following; with its disk copied
(``qemu-img compare`` finds the copy identical); a cancelled move leaves it running where it was; a shut-off guest
moves offline with its disk streamed over; a host in maintenance is evacuated. Assertions are on state and location
(which libvirt has the domain, the record's host), never on guest memory contents."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from typing import Any

import pytest
from django.db import connections

from kvmweb import hypervisor as hv
from kvmweb.fleet.maintenance import host_evacuate, host_maintenance_set
from kvmweb.fleet.migration import KIND, vm_migrate
from kvmweb.jobs.models import Job
from kvmweb.jobs.services import job_cancel
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_define, vm_start
from tests.conftest import memtest_spec, virsh
from tests.fleet.conftest import host2_run

pytestmark = pytest.mark.real
MiB = 1024


def _lines(job: Job) -> str:
    return " | ".join(job.lines.values_list("message", flat=True))


def _done(job: Job) -> Job:
    job.refresh_from_db()
    assert job.state == "succeeded", (job.error, _lines(job))
    return job


def _where(vm: VirtualMachine, *hosts: Any) -> dict[str, str]:
    """Which host's libvirt has the domain, in which state."""
    found = {}
    for host in hosts:
        try:
            found[host.name] = hv.domain_lookup(hv.registry.connection(host.uri), str(vm.uuid)).state().slug
        except hv.DomainNotFound:
            pass
    return found


def _running_vm(owner: Any, host: Any, cleanup: list[str], **kw: Any) -> VirtualMachine:
    doc = memtest_spec(memory_kib=64 * MiB, **kw)
    cleanup.append(doc.name)
    vm = vm_define(actor=owner, host=host, doc=doc)
    vm_start(actor=owner, vm=vm)
    return vm


def _disk_with_data(pool: dict[str, Any], conn: hv.Connection) -> str:
    """A qcow2 volume (256 MiB) with 8 MiB of a pattern at its start, in ``pool`` on the host of ``conn``."""
    from tests.conftest import unique_name

    volume = hv.pool_lookup(conn, pool["name"]).create_volume(
        hv.VolumeSpec(name=f"{unique_name('disk')}.qcow2", capacity=256 << 20, format="qcow2"))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 8M", volume.path], check=True,
                   capture_output=True)
    hv.pool_lookup(conn, pool["name"]).refresh()
    return volume.path


def _compare_with_host2_copy(second_host: Any, path: str) -> subprocess.CompletedProcess[str]:
    """``qemu-img compare`` of host 1's ``path`` and host 2's file at the same path (read in host 2's namespace)."""
    mine = second_host.shared / ("h1-" + path.rsplit("/", 1)[-1])
    shutil.copyfile(path, mine)
    try:
        return host2_run(second_host, "qemu-img", "compare", "-U", str(mine), path)
    finally:
        mine.unlink()


def test_live_there_and_back(two_hosts, staff, owner, cleanup_domains, eager,  # type: ignore[no-untyped-def]
                             django_capture_on_commit_callbacks) -> None:
    local, second = two_hosts
    vm = _running_vm(owner, local, cleanup_domains)
    with django_capture_on_commit_callbacks(execute=True):
        job = vm_migrate(actor=staff, vm=vm, dest_host=None)  # any host: placement picks the other one
    job = _done(job)
    vm.refresh_from_db()
    assert vm.host == second and vm.owner == owner
    assert _where(vm, local, second) == {"second": "running"}
    assert virsh("dominfo", vm.name, uri=second.uri, check=False).count("Persistent:     yes") == 1
    lines = _lines(job)
    assert "Placed on second" in lines and "local: no — the VM is there" in lines
    assert "downtime" in lines and "pass(es)" in lines

    with django_capture_on_commit_callbacks(execute=True):
        job = vm_migrate(actor=staff, vm=vm, dest_host=local)
    _done(job)
    vm.refresh_from_db()
    assert vm.host == local
    assert _where(vm, local, second) == {"local": "running"}


def test_live_with_the_disk_copied(two_hosts, own_disks, second_host, staff, owner, cleanup_domains, eager,  # type: ignore[no-untyped-def]
                                   django_capture_on_commit_callbacks) -> None:
    local, second = two_hosts
    path = _disk_with_data(own_disks, hv.registry.connection(local.uri))
    vm = _running_vm(owner, local, cleanup_domains, disk=path)
    with django_capture_on_commit_callbacks(execute=True):
        job = vm_migrate(actor=staff, vm=vm, dest_host=second, copy_storage=True)
    job = _done(job)
    vm.refresh_from_db()
    assert vm.host == second and _where(vm, local, second) == {"second": "running"}
    assert "Made 1 empty disk(s) on second" in _lines(job)
    compared = _compare_with_host2_copy(second_host, path)
    assert compared.returncode == 0 and "identical" in compared.stdout, compared.stdout + compared.stderr


def test_cancel_leaves_it_running_where_it_was(transactional_db, two_hosts, staff, owner, cleanup_domains,  # type: ignore[no-untyped-def]
                                               settings, eager) -> None:
    local, second = two_hosts
    settings.KVMWEB_MIGRATION_BANDWIDTH_MIB = 1  # 64 MiB at 1 MiB/s: a minute, time enough to cancel
    vm = _running_vm(owner, local, cleanup_domains)
    # the job runs in this process (eager), in a thread, while this thread cancels it
    def move() -> None:
        try:
            vm_migrate(actor=staff, vm=vm, dest_host=second)
        finally:
            connections.close_all()  # this thread's database connection

    runner = threading.Thread(target=move)
    runner.start()
    deadline = time.monotonic() + 60
    job = None
    while time.monotonic() < deadline:
        job = Job.objects.filter(kind=KIND, target=str(vm.uuid)).first()
        if job is not None and "migration job started" in _lines(job):
            break
        time.sleep(0.2)
    assert job is not None and "migration job started" in _lines(job), job and _lines(job)
    time.sleep(1)
    job.refresh_from_db()
    assert job.state == "running", (job.error, _lines(job))
    job_cancel(actor=staff, job=job)
    runner.join(120)
    job.refresh_from_db()
    assert job.state == "cancelled", (job.error, _lines(job))
    assert "Cancel requested: stopping libvirt's migration job." in _lines(job)
    vm.refresh_from_db()
    assert vm.host == local
    assert _where(vm, local, second) == {"local": "running"}


def test_offline_with_the_disk_streamed(two_hosts, own_disks, second_host, staff, owner, cleanup_domains,  # type: ignore[no-untyped-def]
                                        eager, django_capture_on_commit_callbacks) -> None:
    local, second = two_hosts
    path = _disk_with_data(own_disks, hv.registry.connection(local.uri))
    doc = memtest_spec(memory_kib=64 * MiB, disk=path)
    cleanup_domains.append(doc.name)
    vm = vm_define(actor=owner, host=local, doc=doc)
    with django_capture_on_commit_callbacks(execute=True):
        job = vm_migrate(actor=staff, vm=vm, dest_host=second, copy_storage=True)
    job = _done(job)
    assert "offline" in job.title and "1 disk(s) copied" in _lines(job)
    vm.refresh_from_db()
    assert vm.host == second and _where(vm, local, second) == {"second": "shutoff"}
    compared = _compare_with_host2_copy(second_host, path)
    assert compared.returncode == 0 and "identical" in compared.stdout, compared.stdout + compared.stderr


def test_evacuate_a_host_in_maintenance(two_hosts, staff, owner, cleanup_domains, settings, eager,  # type: ignore[no-untyped-def]
                                        django_capture_on_commit_callbacks) -> None:
    local, second = two_hosts
    settings.KVMWEB_CPU_OVERCOMMIT = 64.0  # host 1 is shared with other test runs: their guests count too
    moving = _running_vm(owner, second, [])
    resting = vm_define(actor=owner, host=second, doc=memtest_spec(memory_kib=64 * MiB))  # shut off: stays
    host_maintenance_set(actor=staff, host=second, on=True)
    with django_capture_on_commit_callbacks(execute=True):
        parent = host_evacuate(actor=staff, host=second)
    parent = _done(parent)
    cleanup_domains.append(moving.name)
    children = parent.result["children"]
    assert len(children) == 1 and parent.result["moved"] == [moving.name]
    child = _done(Job.objects.get(pk=children[0]))
    assert child.kind == "vm.migrate" and child.title.startswith(f"Move {moving.name} to local (live")
    assert f"Every running VM left second: {moving.name}." in _lines(parent)
    moving.refresh_from_db()
    resting.refresh_from_db()
    assert moving.host == local and _where(moving, local, second) == {"local": "running"}
    assert resting.host == second and _where(resting, local, second) == {"second": "shutoff"}
