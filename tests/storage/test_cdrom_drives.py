"""Fast: adding and removing CD-ROM drives (libvirt's test:///default driver): bus defaults per machine type,
device names, limits, media, a running VM (definition only), permissions, the API and the page forms."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, NotFoundError, ValidationError
from kvmweb.machines.handles import vm_handle
from kvmweb.machines.services import vm_define
from kvmweb.storage import services
from kvmweb.storage.models import PoolAccess
from tests.conftest import PREFIX, spec_testdrv, unique_name

pytestmark = pytest.mark.django_db
PC, Q35 = "pc-i440fx-7.2", "pc-q35-7.2"
SECURE, INACTIVE = 1, 2  # virDomainXMLFlags: VIR_DOMAIN_XML_SECURE, VIR_DOMAIN_XML_INACTIVE


def make_vm(owner: Any, host: Any, *, machine: str | None = PC, disks: tuple[hv.Disk, ...] = ()) -> Any:
    return vm_define(actor=owner, host=host, doc=spec_testdrv(machine=machine, devices=disks))


def config_disks(vm: Any) -> dict[str, hv.DiskInfo]:
    return {d.target: d for d in (disk.info() for disk in vm_handle(vm).document(inactive=True).disks)}


def cd(target: str, bus: str) -> hv.Disk:
    return hv.Disk.new(target=target, device="cdrom", bus=bus, format="raw")


def default_cdrom_bus(machine: str | None, arch: str = "x86_64") -> str:
    return hv.DomainDocument.new(name="x", memory_kib=1024, arch=arch, machine=machine).default_cdrom_bus


@pytest.fixture
def library_iso(test_host, staff):  # type: ignore[no-untyped-def]
    """A complete medium of the ISO library on the test driver's host (the test driver never reads its file)."""
    from kvmweb.media.models import IsoImage

    return IsoImage.objects.create(host=test_host, name="install.iso", path="/isos/install.iso", size=1 << 20,
                                   uploaded=1 << 20, complete=True, registered=True, added_by=staff)


@pytest.fixture
def pool_iso(test_host, owner) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """An *.iso volume alice made in the test driver's pool (opened to her); removed afterwards."""
    PoolAccess.objects.create(host=test_host, pool="default-pool").users.add(owner)
    name = f"{unique_name('cd')}.iso"
    services.volume_create(actor=owner, host=test_host, pool="default-pool", name=name, size="1M", fmt="raw")
    yield name
    pool = hv.pool_lookup(hv.registry.connection(test_host.uri), "default-pool")
    for vol in pool.volumes():
        if vol.name.startswith(PREFIX):
            pool.volume(vol.name).delete()


def test_default_bus_follows_the_machine_type() -> None:
    assert default_cdrom_bus("pc-q35-7.2") == "sata"
    assert default_cdrom_bus("q35") == "sata"
    assert default_cdrom_bus("pc-i440fx-7.2") == "ide"
    assert default_cdrom_bus("pc") == "ide"
    assert default_cdrom_bus(None) == "ide"
    assert default_cdrom_bus("virt", "aarch64") == "scsi"


def test_ide_names_skip_those_in_use_and_the_fifth_is_refused(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    disk = hv.Disk.new(target="hdb", device="disk", bus="ide", source="/var/lib/x.qcow2")
    vm = make_vm(owner, test_host, machine=PC, disks=(disk,))
    picked = [services.cdrom_add(actor=owner, vm=vm).target for _ in range(3)]
    assert picked == ["hda", "hdc", "hdd"]
    disks = config_disks(vm)
    assert all(disks[t].device == "cdrom" and disks[t].bus == "ide" and not disks[t].source for t in picked)
    with pytest.raises(ConflictError, match="IDE slots") as exc:
        services.cdrom_add(actor=owner, vm=vm)
    assert exc.value.code == "no_free_slot"
    assert services.cdrom_add(actor=owner, vm=vm, bus="sata").target == "sda"  # another bus still has room
    assert AuditEntry.objects.filter(action="vm.cdrom_add").count() == 4


def test_q35_gets_sata_and_no_ide(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=Q35, disks=(cd("sda", "sata"),))
    change = services.cdrom_add(actor=owner, vm=vm)
    assert (change.target, change.bus, change.pending) == ("sdb", "sata", False)
    assert change.message == "CD-ROM drive sdb (sata) added."
    with pytest.raises(ValidationError, match="no IDE controller"):
        services.cdrom_add(actor=owner, vm=vm, bus="ide")
    with pytest.raises(ValidationError, match="Unknown bus"):
        services.cdrom_add(actor=owner, vm=vm, bus="virtio")  # a CD-ROM drive cannot sit on virtio
    assert set(config_disks(vm)) == {"sda", "sdb"}


def test_drive_count_limit(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=Q35)
    for _ in range(services.MAX_CDROM_DRIVES):
        services.cdrom_add(actor=owner, vm=vm)
    with pytest.raises(ConflictError) as exc:
        services.cdrom_add(actor=owner, vm=vm, bus="scsi")
    assert exc.value.code == "too_many_drives"


def test_loaded_drives_library_media_stay_unlabelled(owner, test_host, library_iso, pool_iso) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=PC)
    lib = services.cdrom_add(actor=owner, vm=vm, iso_id=library_iso.pk)
    vol = services.cdrom_add(actor=owner, vm=vm, pool="default-pool", name=pool_iso)
    disks = config_disks(vm)
    assert disks[lib.target].source == "/isos/install.iso" and disks[lib.target].shared_media
    assert disks[vol.target].source.endswith(pool_iso) and not disks[vol.target].shared_media
    root = ET.fromstring(vm_handle(vm).xml(inactive=True))
    drive = next(d for d in root.iter("disk") if d.find(f"target[@dev='{lib.target}']") is not None)
    label = drive.find("source/seclabel")
    assert label is not None and label.get("relabel") == "no" and label.get("model") == "dac"
    assert drive.find("readonly") is not None
    with pytest.raises(ValidationError, match="Only ISO images"):
        services.cdrom_add(actor=owner, vm=vm, pool="default-pool", name="disk.qcow2")
    with pytest.raises(NotFoundError):
        services.cdrom_add(actor=owner, vm=vm, iso_id=999999)
    with pytest.raises(NotFoundError):
        services.cdrom_add(actor=owner, vm=vm, pool="default-pool", name="missing.iso")
    assert len(config_disks(vm)) == 2  # nothing half-made by the refusals


def test_running_vm_changes_only_its_definition(client, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=PC, disks=(cd("hda", "ide"),))
    dom = vm_handle(vm)
    dom.start()
    change = services.cdrom_add(actor=owner, vm=vm)
    assert change.target == "hdb" and change.pending and "takes effect at the next boot" in change.message
    assert change.target in config_disks(vm) and [d.target for d in dom.document().disks] == ["hda"]
    gone = services.cdrom_remove(actor=owner, vm=vm, target="hda")
    assert gone.pending and "next boot" in gone.message
    with pytest.raises(ConflictError, match="already removed") as exc:
        services.cdrom_remove(actor=owner, vm=vm, target="hda")
    assert exc.value.code == "pending"
    assert services.cdrom_add(actor=owner, vm=vm).target == "hdc"  # hda is still the running guest's
    # the section and the API say what changes at the next boot
    api = APIClient()
    api.force_login(owner)
    pending = api.get(f"/api/v1/vms/{vm.uuid}/disks/").json()["next_boot"]
    assert [d["target"] for d in pending["added"]] == ["hdb", "hdc"] and pending["removed"] == ["hda"]
    client.force_login(owner)
    section = client.get(f"/storage/vms/{vm.uuid}/disks/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="next-boot-drives"' in section and "removed from the next boot" in section
    removed = services.cdrom_remove(actor=owner, vm=vm, target=change.target)
    assert removed.pending and change.target not in config_disks(vm)
    dom.destroy()
    assert set(config_disks(vm)) == {"hdc"}


def test_removal_refuses_disks_and_unknown_targets(owner, test_host, library_iso) -> None:  # type: ignore[no-untyped-def]
    disk = hv.Disk.new(target="vda", device="disk", bus="virtio", source="/var/lib/x.qcow2")
    vm = make_vm(owner, test_host, machine=Q35, disks=(disk,))
    with pytest.raises(ValidationError, match="not a CD-ROM drive"):
        services.cdrom_remove(actor=owner, vm=vm, target="vda")
    with pytest.raises(NotFoundError):
        services.cdrom_remove(actor=owner, vm=vm, target="sdz")
    loaded = services.cdrom_add(actor=owner, vm=vm, iso_id=library_iso.pk)
    change = services.cdrom_remove(actor=owner, vm=vm, target=loaded.target)
    assert not change.pending and change.message == f"CD-ROM drive {loaded.target} removed."
    assert set(config_disks(vm)) == {"vda"}
    assert AuditEntry.objects.filter(action="vm.cdrom_remove").count() == 1


def test_permissions(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=PC)
    with pytest.raises(NotFoundError):
        services.cdrom_add(actor=other_user, vm=vm)
    assert services.cdrom_add(actor=staff, vm=vm).target == "hda"
    with pytest.raises(NotFoundError):
        services.cdrom_remove(actor=other_user, vm=vm, target="hda")
    bob = APIClient()
    bob.force_login(other_user)
    reply = bob.post(f"/api/v1/vms/{vm.uuid}/disks/cdrom/", {}, format="json")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    assert bob.post(f"/api/v1/vms/{vm.uuid}/disks/cdrom/remove/", {"target": "hda"}, format="json").status_code == 404
    assert APIClient().post(f"/api/v1/vms/{vm.uuid}/disks/cdrom/", {}, format="json").status_code in (401, 403)
    anonymous = APIClient().post(f"/storage/vms/{vm.uuid}/disks/cdrom/add/", {})
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert set(config_disks(vm)) == {"hda"}


def test_api(owner, test_host, library_iso) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=Q35)
    api = APIClient()
    api.force_login(owner)
    url = f"/api/v1/vms/{vm.uuid}/disks/cdrom/"
    reply = api.post(url, {"iso": library_iso.pk}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json() == {"detail": "CD-ROM drive sda (sata) added.", "target": "sda", "bus": "sata",
                            "pending": False}
    assert api.post(url, {"bus": "ide"}, format="json").status_code == 400
    assert api.post(url, {"bus": "floppy"}, format="json").json()["error"]
    disks = api.get(f"/api/v1/vms/{vm.uuid}/disks/").json()["disks"]
    assert [(d["target"], d["device"], d["source"]) for d in disks] == [("sda", "cdrom", "/isos/install.iso")]
    assert api.post(f"{url}remove/", {"target": "sda"}, format="json").json()["target"] == "sda"
    assert api.post(f"{url}remove/", {"target": "sda"}, format="json").status_code == 404
    assert api.post(f"{url}remove/", {}, format="json").status_code == 400


def test_page_forms_and_boot_order(client, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = make_vm(owner, test_host, machine=PC)
    client.force_login(owner)
    section = client.get(f"/storage/vms/{vm.uuid}/disks/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="cdrom-add"' in section and "Add CD-ROM drive" in section and "Remove drive" not in section
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/cdrom/add/", {"bus": "", "iso": ""}, follow=True)
    assert "CD-ROM drive hda (ide) added." in reply.content.decode()
    section = client.get(f"/storage/vms/{vm.uuid}/disks/", HTTP_HX_REQUEST="true").content.decode()
    assert "Remove drive" in section and '<option value="cdrom"' in section
    reply = client.post(f"/storage/vms/{vm.uuid}/boot-order/", {"first": "cdrom", "second": "hd"}, follow=True)
    assert "Boot order: cdrom, hd (from the next boot)." in reply.content.decode()
    assert hv.DomainDocument.from_xml(vm_handle(vm).xml(inactive=True)).boot_order == ["cdrom", "hd"]
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/cdrom/add/", {"bus": "ide", "iso": "pool/x.qcow2"},
                        follow=True)
    assert "Only ISO images" in reply.content.decode()
    reply = client.post(f"/storage/vms/{vm.uuid}/disks/cdrom/remove/", {"target": "hda"}, follow=True)
    assert "CD-ROM drive hda removed." in reply.content.decode()
    assert not config_disks(vm)


def test_definition_edits_keep_secrets(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    """Boot order, bus moves and drive changes redefine the VM from its full definition: a VNC password set outside
    the portal (virsh edit) survives them."""
    vm = make_vm(owner, test_host, disks=(hv.Disk.new(target="vda", bus="virtio", format="raw", source="/x.img"),))
    dom = vm_handle(vm)
    root = ET.fromstring(dom.raw.XMLDesc(SECURE))
    ET.SubElement(root.find("devices"), "graphics", type="vnc", port="-1", passwd="s3cret")  # type: ignore[arg-type]
    hv.domain_define(dom.conn, hv.DomainDocument.from_xml(ET.tostring(root, encoding="unicode")))
    services.boot_order_set(actor=owner, vm=vm, order=["hd", "cdrom"])
    services.disk_set_bus(actor=owner, vm=vm, target="vda", bus="sata")
    services.cdrom_add(actor=owner, vm=vm)
    secure = ET.fromstring(dom.raw.XMLDesc(SECURE | INACTIVE))
    assert secure.find("devices/graphics").get("passwd") == "s3cret"  # type: ignore[union-attr]
