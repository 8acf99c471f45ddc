"""Real: volumes through the API on qemu:///system, checked with qemu-img and virsh."""
from __future__ import annotations

import os

import pytest

from kvmweb.media.models import IsoImage
from tests.conftest import MEMTEST_ISO, PREFIX, memtest_spec, unique_name, virsh
from tests.storage.conftest import qemu_img_info, vol_url

pytestmark = pytest.mark.real
G = 1024**3
M = 1024**2


def test_create_resize_shrink_refused(open_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('vol')}.qcow2"
    reply = alice_api.post(vol_url(open_pool), {"name": name, "size": "64M", "format": "qcow2"}, format="json")
    assert reply.status_code == 201, reply.content
    path = reply.json()["path"]
    assert path == os.path.join(open_pool["path"], name)
    info = qemu_img_info(path)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 64 * M)

    reply = alice_api.post(vol_url(open_pool, name, "resize"), {"size": "+1G"}, format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["new_capacity"] == G + 64 * M and reply.json()["online"] is False
    assert qemu_img_info(path)["virtual-size"] == G + 64 * M

    for size, words in [("-5G", "Shrinking is refused"), ("512M", "Shrinking is refused"), ("10X", "not a size"),
                        ("0", "zero"), ("+100000T", "free")]:
        reply = alice_api.post(vol_url(open_pool, name, "resize"), {"size": size}, format="json")
        assert reply.status_code == 400, (size, reply.content)
        assert words in reply.json()["detail"], (size, reply.json())
    assert qemu_img_info(path)["virtual-size"] == G + 64 * M  # nothing changed

    listing = alice_api.get(vol_url(open_pool)).json()
    assert [v["name"] for v in listing] == [name]  # alice sees her volume (and nothing else in the pool)
    assert listing[0]["owner"] == "alice" and listing[0]["used_by"] == []

    assert alice_api.delete(vol_url(open_pool, name)).status_code == 204
    assert not os.path.exists(path)


@pytest.mark.parametrize("bad", ["a/b.qcow2", "../x.qcow2", "a b.qcow2", "x'.qcow2", "<x>.qcow2", "a..b"])
def test_bad_names_refused(open_pool, alice_api, bad: str) -> None:  # type: ignore[no-untyped-def]
    before = set(os.listdir(open_pool["path"]))
    reply = alice_api.post(vol_url(open_pool), {"name": bad, "size": "1M"}, format="json")
    assert reply.status_code == 400 and "Invalid volume name" in reply.json()["detail"]
    assert set(os.listdir(open_pool["path"])) == before


@pytest.mark.parametrize("size", ["-5G", "10X", "0", "100000T"])
def test_bad_sizes_refused_on_create(open_pool, alice_api, size: str) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('vol')}.qcow2"
    reply = alice_api.post(vol_url(open_pool), {"name": name, "size": size}, format="json")
    assert reply.status_code == 400, reply.content
    assert not os.path.exists(os.path.join(open_pool["path"], name))


def test_other_users_and_closed_pools_are_404(open_pool, alice_api, bob_api, test_host) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('vol')}.qcow2"
    assert alice_api.post(vol_url(open_pool), {"name": name, "size": "1M"}, format="json").status_code == 201
    try:
        # bob: the pool is not open to him, so neither the pool nor the volume exist for him
        assert bob_api.get(vol_url(open_pool)).status_code == 404
        assert bob_api.post(vol_url(open_pool, name, "resize"), {"size": "+1M"}, format="json").status_code == 404
        assert bob_api.delete(vol_url(open_pool, name)).status_code == 404
        # a pool of another host: the test driver's host has no such pool open to alice
        other = {**open_pool, "host": test_host}
        assert alice_api.get(vol_url(other)).status_code == 404
        assert alice_api.post(vol_url(other), {"name": "x.qcow2", "size": "1M"}, format="json").status_code == 404
        # anonymous
        from rest_framework.test import APIClient
        assert APIClient().get(vol_url(open_pool)).status_code in (401, 403)
    finally:
        assert alice_api.delete(vol_url(open_pool, name)).status_code == 204


def test_delete_refused_while_attached_then_allowed(open_pool, alice_api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    name = f"{unique_name('vol')}.qcow2"
    assert alice_api.post(vol_url(open_pool), {"name": name, "size": "16M"}, format="json").status_code == 201
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/disks/", {"pool": open_pool["name"], "volume": name},
                           format="json")
    assert reply.status_code == 201, reply.content
    target = reply.json()["target"]
    assert target == "vda"
    path = os.path.join(open_pool["path"], name)
    assert path in virsh("domblklist", vm.name)

    reply = alice_api.delete(vol_url(open_pool, name))
    assert reply.status_code == 409 and vm.name in reply.json()["detail"]
    assert os.path.exists(path)
    listed = {v["name"]: v for v in alice_api.get(vol_url(open_pool)).json()}
    assert listed[name]["used_by"][0]["name"] == vm.name

    assert alice_api.post(f"/api/v1/vms/{vm.uuid}/disks/detach/", {"target": target},
                          format="json").status_code == 200
    assert path not in virsh("domblklist", vm.name)
    assert alice_api.delete(vol_url(open_pool, name)).status_code == 204
    assert not os.path.exists(path)


def test_attach_new_bus_and_boot_order(open_pool, alice_api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    name = f"{unique_name('vol')}.qcow2"
    disks = f"/api/v1/vms/{vm.uuid}/disks/"
    reply = alice_api.post(disks, {"pool": open_pool["name"], "volume": name, "new": True, "size": "8M"},
                           format="json")
    assert reply.status_code == 201, reply.content
    assert qemu_img_info(os.path.join(open_pool["path"], name))["virtual-size"] == 8 * M
    reply = alice_api.post(disks + "bus/", {"target": "vda", "bus": "sata"}, format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["target"] == "sdb"
    lines = [line.split() for line in virsh("domblklist", vm.name, "--details").splitlines()]
    assert ["file", "disk", "sdb", os.path.join(open_pool["path"], name)] in lines
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/boot-order/", {"order": ["hd", "cdrom"]}, format="json")
    assert reply.status_code == 200, reply.content
    xml = virsh("dumpxml", vm.name, "--inactive")
    assert "<boot dev='hd'/>" in xml and "<boot dev='cdrom'/>" in xml and "boot order=" not in xml
    assert alice_api.get(disks).json()["boot_order"] == ["hd", "cdrom"]
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/boot-order/", {"order": ["hd", "hd"]}, format="json")
    assert reply.status_code == 400
    assert alice_api.post(disks + "detach/", {"target": "sdb"}, format="json").status_code == 200
    assert alice_api.delete(vol_url(open_pool, name)).status_code == 204


def test_running_guest_grows_online_and_swaps_cdrom(open_pool, alice_api, real_vm) -> None:  # type: ignore[no-untyped-def]
    """One TCG guest: grow its disk online (block resize) and eject/insert CD-ROM media live."""
    disk = f"{unique_name('vol')}.qcow2"
    iso = f"{PREFIX}media-{os.getpid()}.iso"
    assert alice_api.post(vol_url(open_pool), {"name": disk, "size": "32M"}, format="json").status_code == 201
    virsh("vol-create-as", open_pool["name"], iso, "1M", "--format", "raw")
    try:
        vm = real_vm(memtest_spec(disk=os.path.join(open_pool["path"], disk)))
        virsh("start", vm.name)
        base = f"/api/v1/vms/{vm.uuid}/"
        reply = alice_api.post(base + "disks/resize/", {"target": "vda", "size": "+1G"}, format="json")
        assert reply.status_code == 200, reply.content
        body = reply.json()
        assert body["online"] is True and "told at once" in body["guest"]
        assert "Capacity:       1107296256" in virsh("domblkinfo", vm.name, "vda")
        assert qemu_img_info(os.path.join(open_pool["path"], disk))["virtual-size"] == G + 32 * M
        assert alice_api.post(base + "disks/resize/", {"target": "vda", "size": "-1G"},
                              format="json").status_code == 400

        assert alice_api.post(base + "cdrom/", {"target": "sda"}, format="json").status_code == 200
        row = next(line.split() for line in virsh("domblklist", vm.name).splitlines() if line.split()[0] == "sda")
        assert row == ["sda", "-"]
        reply = alice_api.post(base + "cdrom/", {"target": "sda", "pool": open_pool["name"], "volume": iso},
                               format="json")
        assert reply.status_code == 200, reply.content
        row = next(line.split() for line in virsh("domblklist", vm.name).splitlines() if line.split()[0] == "sda")
        assert row == ["sda", os.path.join(open_pool["path"], iso)]
        # a medium of the ISO library (a registered file outside any pool) goes in live too
        medium = IsoImage.objects.create(host=open_pool["host"], name="memtest.iso", path=MEMTEST_ISO, complete=True,
                                         registered=True)
        reply = alice_api.post(base + "cdrom/", {"target": "sda", "iso": medium.pk}, format="json")
        assert reply.status_code == 200, reply.content
        row = next(line.split() for line in virsh("domblklist", vm.name).splitlines() if line.split()[0] == "sda")
        assert row == ["sda", MEMTEST_ISO]
        assert virsh("domstate", vm.name).strip() == "running"
        # a volume attached to a running guest cannot be deleted
        assert alice_api.delete(vol_url(open_pool, disk)).status_code == 409
    finally:
        virsh("destroy", next(iter([vm.name])) if "vm" in locals() else "none", check=False)
        virsh("vol-delete", iso, "--pool", open_pool["name"], check=False)


def test_backing_file_of_a_linked_clone_cannot_be_deleted(open_pool, alice_api, owner) -> None:  # type: ignore[no-untyped-def]
    from kvmweb import hypervisor as hv
    from kvmweb.storage.models import VolumeOwner

    base = f"{unique_name('base')}.qcow2"
    top = f"{unique_name('top')}.qcow2"
    assert alice_api.post(vol_url(open_pool), {"name": base, "size": "8M"}, format="json").status_code == 201
    pool = hv.pool_lookup(hv.registry.connection("qemu:///system"), open_pool["name"])
    pool.create_overlay(pool.volume(base), top)
    VolumeOwner.objects.create(host=open_pool["host"], pool=open_pool["name"], name=top, owner=owner)
    reply = alice_api.delete(vol_url(open_pool, base))
    assert reply.status_code == 409 and top in reply.json()["detail"]
    assert alice_api.get(vol_url(open_pool, top)).json()["backing_file"] == os.path.join(open_pool["path"], base)
    assert alice_api.delete(vol_url(open_pool, top)).status_code == 204
    assert alice_api.delete(vol_url(open_pool, base)).status_code == 204
