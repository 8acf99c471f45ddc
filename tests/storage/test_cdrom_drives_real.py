"""Real (qemu:///system): a VM made without a CD-ROM drive gets one with memtest86+, boots it under TCG, and loses
the drive again; on the running VM a drive is added and removed in its definition only (libvirt cannot hot-plug
one)."""
from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET

import pytest
from rest_framework.test import APIClient

from kvmweb.machines.handles import vm_handle
from tests.conftest import MEMTEST_ISO, memtest_spec, virsh
from tests.provisioning.helpers import wait_screen
from tests.media.conftest import memtest_iso  # noqa: F401

pytestmark = pytest.mark.real


def without_drives(machine: str | None = None):  # type: ignore[no-untyped-def]
    """memtest86+'s guest with no disk and no CD-ROM drive at all, booting from 'hd' (``machine``: e.g. q35)."""
    doc = memtest_spec()
    for disk in doc.disks:
        doc.remove_device(disk)
    doc.set_boot_order(["hd"])
    if machine:
        doc.machine = machine
    return doc


def inactive_cdroms(name: str) -> dict[str, ET.Element]:
    root = ET.fromstring(virsh("dumpxml", "--inactive", name))
    return {d.find("target").get("dev"): d for d in root.iter("disk") if d.get("device") == "cdrom"}  # type: ignore[union-attr]


def wait_read(name: str, target: str, least: int, timeout: float = 60.0) -> None:
    """Wait until the guest has read at least ``least`` bytes from ``target`` (``virsh domblkstat``)."""
    deadline, read = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        rows = [line.split() for line in virsh("domblkstat", name, target).splitlines()]
        read = next((int(r[2]) for r in rows if len(r) == 3 and r[1] == "rd_bytes"), 0)
        if read >= least:
            return
        time.sleep(0.5)
    raise AssertionError(f"the guest read only {read} bytes from {target}")


def test_add_boot_and_remove_a_cdrom_drive(owner, real_vm, memtest_iso) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    vm = real_vm(without_drives())
    assert virsh("domblklist", vm.name).strip() == ""
    iso_owner = os.stat(MEMTEST_ISO).st_uid
    api = APIClient()
    api.force_login(owner)
    url = f"/api/v1/vms/{vm.uuid}/disks/cdrom/"

    # the default machine is i440fx ('pc'): the drive goes on IDE, as hda, loaded with the library's memtest86+
    reply = api.post(url, {"iso": memtest_iso.pk}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["target"] == "hda" and reply.json()["bus"] == "ide" and not reply.json()["pending"]
    drive = inactive_cdroms(vm.name)["hda"]
    assert drive.find("source").get("file") == MEMTEST_ISO  # type: ignore[union-attr]
    assert drive.find("source/seclabel").get("relabel") == "no"  # type: ignore[union-attr]
    assert api.post(f"/api/v1/vms/{vm.uuid}/boot-order/", {"order": ["cdrom", "hd"]},
                    format="json").status_code == 200
    root = ET.fromstring(virsh("dumpxml", "--inactive", vm.name))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]

    # it boots memtest86+ from that drive under TCG
    dom = vm_handle(vm)
    dom.start()
    try:
        rows = [line.split() for line in virsh("domblklist", "--details", vm.name).splitlines()]
        assert ["file", "cdrom", "hda", MEMTEST_ISO] in rows
        wait_read(vm.name, "hda", 128 * 1024)  # memtest86+ loads ~230 KiB from it; a BIOS finding nothing, 4 KiB
        wait_screen(dom)

        # while it runs, a drive is added to (and removed from) the definition only: it is not hot-plugged
        reply = api.post(url, {}, format="json")
        assert reply.status_code == 201 and reply.json()["pending"], reply.content
        assert "next boot" in reply.json()["detail"]
        added = reply.json()["target"]
        assert added == "hdb" and added in inactive_cdroms(vm.name)
        assert added not in virsh("domblklist", vm.name)
        pending = api.get(f"/api/v1/vms/{vm.uuid}/disks/").json()["next_boot"]
        assert [d["target"] for d in pending["added"]] == [added] and not pending["removed"]
        reply = api.post(f"{url}remove/", {"target": added}, format="json")
        assert reply.status_code == 200 and reply.json()["pending"], reply.content
        assert added not in inactive_cdroms(vm.name)
        # the running guest's loaded drive may go from its definition, and stays in the guest until it stops
        reply = api.post(f"{url}remove/", {"target": "hda"}, format="json")
        assert reply.status_code == 200 and reply.json()["pending"]
        assert "hda" in virsh("domblklist", vm.name) and not inactive_cdroms(vm.name)
        assert api.post(f"{url}remove/", {"target": "hda"}, format="json").json()["error"] == "pending"
        assert api.post(url, {"iso": memtest_iso.pk}, format="json").json()["target"] == "hdb"  # hda still live
    finally:
        virsh("destroy", vm.name, check=False)
    assert os.stat(MEMTEST_ISO).st_uid == iso_owner  # shared media are not chowned to libvirt-qemu

    # on the shut-off VM the drive goes from the definition at once
    reply = api.post(f"{url}remove/", {"target": "hdb"}, format="json")
    assert reply.status_code == 200 and not reply.json()["pending"], reply.content
    inactive = virsh("dumpxml", "--inactive", vm.name)
    assert "<disk" not in inactive and MEMTEST_ISO not in inactive


def test_q35_gets_a_sata_drive_that_boots(owner, real_vm, memtest_iso) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    vm = real_vm(without_drives(machine="q35"))
    api = APIClient()
    api.force_login(owner)
    reply = api.post(f"/api/v1/vms/{vm.uuid}/disks/cdrom/", {"iso": memtest_iso.pk}, format="json")
    assert reply.status_code == 201 and reply.json()["target"] == "sda" and reply.json()["bus"] == "sata"
    assert api.post(f"/api/v1/vms/{vm.uuid}/disks/cdrom/", {"bus": "ide"}, format="json").status_code == 400
    assert api.post(f"/api/v1/vms/{vm.uuid}/boot-order/", {"order": ["cdrom"]}, format="json").status_code == 200
    dom = vm_handle(vm)
    dom.start()
    try:
        rows = [line.split() for line in virsh("domblklist", "--details", vm.name).splitlines()]
        assert ["file", "cdrom", "sda", MEMTEST_ISO] in rows
        wait_read(vm.name, "sda", 128 * 1024)
        wait_screen(dom)
    finally:
        virsh("destroy", vm.name, check=False)
