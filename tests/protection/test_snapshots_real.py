"""Real snapshots on qemu:///system: a running TCG memtest86+ guest is snapshotted with its memory, F1 (pressed
through libvirt's send-key) opens memtest's settings, and the revert brings back the screen from before; a
shut-off VM's qcow2 gets a marker back (qemu-io as the oracle); a raw disk is refused cleanly; a VM with snapshots
is deleted without leaving their metadata behind."""
from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import numpy as np
import pytest

from kvmweb import hypervisor as hv
from kvmweb.accounts.selectors import quota_usage
from kvmweb.core.errors import ConflictError
from kvmweb.jobs.models import Job
from kvmweb.machines import services as vm_services
from kvmweb.machines.handles import vm_handle
from kvmweb.protection import selectors, snapshots
from kvmweb.storage.models import VolumeOwner
from tests.conftest import ARTIFACTS, memtest_spec, virsh
from tests.console.images import decode_png, difference, is_flat

pytestmark = pytest.mark.real

CHANGED = 3.0  # the console tests' threshold: a mean block difference above it is another screen


def _run(capture: Any, call: Any) -> Job:
    with capture(execute=True):
        job = call()
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, (job.error, list(job.lines.values_list("message", flat=True)))
    return job


def _save(vm: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(vm_handle(vm).screenshot_png())


def _screen(vm: Any) -> np.ndarray:
    return decode_png(vm_handle(vm).screenshot_png())


def _poll(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(what)


def _qemu_io(path: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, path], capture_output=True, text=True,
                          timeout=60)


def _snapshot_names(name: str) -> list[str]:
    return virsh("snapshot-list", name, "--name", check=False).split()


def test_running_guest_reverts_to_the_screen_it_had(real_vm, make_volume, owner, eager,  # type: ignore[no-untyped-def]
                                                    django_capture_on_commit_callbacks) -> None:
    vm = real_vm(memtest_spec(disk=make_volume()))
    vm_services.vm_start(actor=owner, vm=vm)
    # memtest draws its screen within seconds under TCG; wait until it is not flat and has settled
    _poll(lambda: None if is_flat(_screen(vm)) else True, 90, "memtest's screen stays flat")
    time.sleep(3)
    before = _screen(vm)
    _save(vm, "snapshot-memtest-before.png")
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_create(actor=owner, vm=vm, name="memtest-running", memory=True))
    assert job.result == {"snapshot": "memtest-running", "memory": True, "state": "running"}
    assert "memtest-running" in _snapshot_names(vm.name)
    assert "internal" in virsh("snapshot-dumpxml", vm.name, "memtest-running").split("<disks>")[0]  # memory kept

    # F1 through libvirt (virsh send-key: independent of the portal): memtest's settings screen opens
    virsh("send-key", vm.name, "--holdtime", "100", "KEY_F1")
    settings = _poll(lambda: (lambda img: img if difference(img, before) > CHANGED else None)(_screen(vm)), 30,
                     "the guest's screen did not change after F1")
    _save(vm, "snapshot-memtest-f1.png")
    time.sleep(2)
    assert difference(_screen(vm), before) > CHANGED, "memtest's settings closed by themselves"

    with pytest.raises(ConflictError):  # running: a revert needs confirmation
        snapshots.snapshot_revert(actor=owner, vm=vm, name="memtest-running")
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_revert(actor=owner, vm=vm, name="memtest-running", confirm=True))
    assert job.result["state"] == "running"
    assert vm_handle(vm).state() == hv.DomainState.RUNNING
    after = _screen(vm)
    _save(vm, "snapshot-memtest-reverted.png")
    assert difference(after, before) < CHANGED, f"the screen after the revert is not the one before F1 " \
        f"({difference(after, before):.1f})"
    assert difference(after, settings) > CHANGED
    assert selectors.snapshot_overview(actor=owner, vm=vm).current == "memtest-running"


def test_shut_off_vm_gets_its_marker_back(real_vm, make_volume, owner, eager, test_pool,  # type: ignore[no-untyped-def]
                                          django_capture_on_commit_callbacks) -> None:
    path = make_volume(size="64M")
    vm = real_vm(memtest_spec(disk=path))
    assert _qemu_io(path, "write -P 0x41 0 64k").returncode == 0
    assert _qemu_io(path, "write -P 0x61 64k 32M").returncode == 0  # more data for the snapshot to keep
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_create(actor=owner, vm=vm, name="marker-a", description="0x41"))
    assert job.result == {"snapshot": "marker-a", "memory": False, "state": "shutoff"}
    listed = subprocess.run(["qemu-img", "snapshot", "-l", path], capture_output=True, text=True, check=True).stdout
    assert "marker-a" in listed  # inside the qcow2 itself: an internal snapshot
    assert _qemu_io(path, "write -P 0x42 0 64M").returncode == 0  # the whole disk: the snapshot keeps the old data
    assert "Pattern verification failed" in _qemu_io(path, "read -P 0x41 0 64k").stdout
    # the quota's disk counts what the qcow2 holds now: with the snapshot it outgrows its 64 MiB virtual size
    VolumeOwner.objects.create(host=vm.host, pool=test_pool["name"], name=os.path.basename(path), owner=owner)
    virsh("pool-refresh", test_pool["name"])
    allocation = int(virsh("vol-info", path, "--bytes").split("Allocation:")[1].split()[0])
    assert allocation > 64 * 1024 * 1024
    assert quota_usage(owner).disk_bytes == allocation
    _run(django_capture_on_commit_callbacks, lambda: snapshots.snapshot_revert(actor=owner, vm=vm, name="marker-a"))
    back = _qemu_io(path, "read -P 0x41 0 64k")
    assert back.returncode == 0 and "Pattern verification failed" not in back.stdout, back.stdout
    assert vm_handle(vm).state() == hv.DomainState.SHUTOFF  # as it was
    _run(django_capture_on_commit_callbacks, lambda: snapshots.snapshot_delete(actor=owner, vm=vm, name="marker-a"))
    assert _snapshot_names(vm.name) == []
    listed = subprocess.run(["qemu-img", "snapshot", "-l", path], capture_output=True, text=True, check=True).stdout
    assert "marker-a" not in listed


def test_raw_disk_is_refused_cleanly(real_vm, make_volume, owner) -> None:  # type: ignore[no-untyped-def]
    """A VM with a qcow2 and a raw disk: refused before anything starts; neither disk holds a snapshot, libvirt has
    no metadata, no job was queued."""
    qcow2, raw = make_volume(), make_volume(fmt="raw")
    doc = memtest_spec(disk=qcow2)
    doc.add_device(hv.Disk.new(target="vdb", source=raw, format="raw"))
    vm = real_vm(doc)
    jobs = Job.objects.count()
    with pytest.raises(ConflictError) as refused:
        snapshots.snapshot_create(actor=owner, vm=vm, name="never")
    assert refused.value.detail == (f"{vm.name} cannot take a snapshot: Disk vdb is raw, not qcow2: only qcow2 disks "
                                    "hold internal snapshots (convert it, or detach it).")
    assert Job.objects.count() == jobs
    assert _snapshot_names(vm.name) == []
    listed = subprocess.run(["qemu-img", "snapshot", "-l", qcow2], capture_output=True, text=True, check=True).stdout
    assert listed.strip() == ""
    # libvirt itself would refuse too: the portal's reason is not stricter than the host
    proc = subprocess.run(["virsh", "-c", "qemu:///system", "snapshot-create-as", vm.name, "probe"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "raw" in proc.stderr


def test_delete_vm_with_snapshots_leaves_no_metadata(real_vm, make_volume, owner, eager,  # type: ignore[no-untyped-def]
                                                     django_capture_on_commit_callbacks) -> None:
    vm = real_vm(memtest_spec(disk=make_volume()))
    for name in ("one", "two"):
        _run(django_capture_on_commit_callbacks, lambda n=name: snapshots.snapshot_create(actor=owner, vm=vm, name=n))
    assert sorted(_snapshot_names(vm.name)) == ["one", "two"]
    metadata = f"/var/lib/libvirt/qemu/snapshot/{vm.name}"
    assert os.path.isdir(metadata) and sorted(os.listdir(metadata)) == ["one.xml", "two.xml"]
    vm_services.vm_delete(actor=owner, vm=vm)
    assert virsh("dominfo", vm.name, check=False) == ""
    assert not os.path.exists(metadata) or os.listdir(metadata) == []
