"""Real: the disks section of a VM's page and its forms (Django test client, qemu:///system)."""
from __future__ import annotations

import os

import pytest

from tests.conftest import memtest_spec, unique_name, virsh
from tests.storage.conftest import qemu_img_info

pytestmark = pytest.mark.real
M = 1024**2


def test_disks_section_and_forms(client, owner, other_user, open_pool, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    client.force_login(owner)
    assert 'hx-get="/storage/vms/' in client.get(f"/vms/{vm.uuid}/").content.decode()
    section = client.get(f"/storage/vms/{vm.uuid}/disks/", HTTP_HX_REQUEST="true").content.decode()
    assert "memtest86+x64.iso" in section and open_pool["name"] in section

    name = f"{unique_name('pg')}.qcow2"
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/attach/",
                        {"new": "on", "pool": open_pool["name"], "volume": name, "size": "4M", "format": "qcow2",
                         "bus": "virtio"}, follow=True)
    assert "Attached as vda" in reply.content.decode()
    path = os.path.join(open_pool["path"], name)
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/resize/", {"target": "vda", "size": "+4M"}, follow=True)
    text = reply.content.decode()
    assert "grew from 4 MiB to 8 MiB" in text and "when it next starts" in text
    assert qemu_img_info(path)["virtual-size"] == 8 * M
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/resize/", {"target": "vda", "size": "2M"}, follow=True)
    assert "Shrinking is refused" in reply.content.decode()
    reply = client.post(f"/storage/vms/{vm.uuid}/boot-order/", {"first": "cdrom", "second": "hd"}, follow=True)
    assert "Boot order: cdrom, hd (from the next boot)." in reply.content.decode()
    reply = client.post(f"/storage/vms/{vm.uuid}/cdrom/", {"target": "sda", "iso": ""}, follow=True)
    assert "sda ejected" in reply.content.decode()
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/detach/", {"target": "vda"}, follow=True)
    assert "vda detached; its volume stays in its pool." in reply.content.decode()
    assert path not in virsh("domblklist", vm.name)

    # the clone page suggests a name and explains the linked mode
    page = client.get(f"/storage/vms/{vm.uuid}/clone/").content.decode()
    assert f"{vm.name}-clone" in page and "the source must then stay" in page

    client.force_login(other_user)
    assert client.get(f"/storage/vms/{vm.uuid}/disks/").status_code == 404
    assert client.post(f"/storage/vms/{vm.uuid}/disks/detach/", {"target": "sda"}).status_code == 404
    assert client.get(f"/storage/vms/{vm.uuid}/clone/").status_code == 404
    client.logout()
    assert client.get(f"/storage/vms/{vm.uuid}/disks/").status_code == 302
    virsh("vol-delete", path)
