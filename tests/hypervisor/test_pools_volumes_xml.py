"""Fast: golden XML for volume and pool specs (render → compare → parse back), boot orders and device names."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv

G = 1024**3

SPECS: dict[str, hv.VolumeSpec | hv.PoolSpec] = {
    "volume_qcow2": hv.VolumeSpec(name="web-1.qcow2", capacity=20 * G),
    "volume_raw": hv.VolumeSpec(name="scratch.raw", capacity=512 * 1024**2, format="raw", allocation=512 * 1024**2),
    "volume_overlay": hv.VolumeSpec(name="web-2.qcow2", capacity=20 * G, backing_path="/pool/web-1.qcow2",
                                    backing_format="qcow2"),
    "pool_dir": hv.PoolSpec(name="tank", target_path="/srv/kvm/tank",
                            uuid="0d6b7c0a-2f57-4ab4-9b0e-8f9d5c2c1a11"),
}


@pytest.mark.parametrize("key", sorted(SPECS))
def test_render_matches_golden_and_parses_back(key: str, golden) -> None:  # type: ignore[no-untyped-def]
    spec = SPECS[key]
    xml = spec.to_xml()
    golden(f"{key}.xml", xml)
    assert type(spec).from_xml(xml) == spec


def test_volume_parses_libvirt_output() -> None:
    xml = """<volume type='file'><name>a.qcow2</name><key>/p/a.qcow2</key><capacity unit='bytes'>1073741824</capacity>
      <allocation unit='bytes'>200704</allocation><physical unit='bytes'>196624</physical>
      <target><path>/p/a.qcow2</path><format type='qcow2'/></target>
      <backingStore><path>/p/base.qcow2</path><format type='raw'/></backingStore></volume>"""
    spec = hv.VolumeSpec.from_xml(xml)
    assert (spec.name, spec.capacity, spec.allocation, spec.format, spec.path) == (
        "a.qcow2", G, 200704, "qcow2", "/p/a.qcow2")
    assert (spec.backing_path, spec.backing_format) == ("/p/base.qcow2", "raw")


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"name": "../x", "capacity": G}, "Invalid volume name"),
    ({"name": "a b", "capacity": G}, "Invalid volume name"),
    ({"name": "x", "capacity": 0}, "above zero"),
    ({"name": "x", "capacity": G, "format": "vmdk"}, "Unknown format"),
    ({"name": "x", "capacity": G, "format": "raw", "backing_path": "/p/b"}, "Only a qcow2"),
    ({"name": "x", "capacity": G, "backing_path": "rel/b"}, "absolute"),
])
def test_bad_volume_specs(kwargs: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(hv.InvalidRequest, match=words):
        hv.VolumeSpec(**kwargs).to_xml()


@pytest.mark.parametrize("path", ["relative", "/a/../b", "/a/./b", "/", "/a<b", "/a'b"])
def test_bad_pool_paths(path: str) -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.PoolSpec(name="p", target_path=path).to_xml()


def test_disk_device_for_attach() -> None:
    xml = hv.Disk.new(target="vdb", source="/p/x.qcow2").to_xml()
    assert xml == ('<disk type="file" device="disk">\n  <driver name="qemu" type="qcow2"/>\n'
                   '  <source file="/p/x.qcow2"/>\n  <target dev="vdb" bus="virtio"/>\n</disk>')


SOURCE = """<domain type='qemu'><name>web</name><uuid>3b1f6a52-7c2e-4d44-9a0f-6f1c2d3e4b5a</uuid>
<memory unit='KiB'>98304</memory><os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/p/web.qcow2'/>
<target dev='vda' bus='virtio'/></disk></devices></domain>"""


def test_boot_order_read() -> None:
    def order(xml: str) -> list[str]:
        return hv.DomainDocument.from_xml(xml).boot_order

    assert order(SOURCE) == []
    assert order("<domain><os><boot dev='cdrom'/><boot dev='hd'/></os></domain>") == ["cdrom", "hd"]
    xml = ("<domain><os/><devices><disk device='disk'><boot order='2'/></disk>"
           "<disk device='cdrom'><boot order='1'/></disk><interface><boot order='3'/></interface></devices></domain>")
    assert order(xml) == ["cdrom", "hd", "network"]


def test_free_target() -> None:
    assert hv.free_disk_target("virtio", ["vda", "sda"]) == "vdb"
    assert hv.free_disk_target("sata", ["vda", "sda"]) == "sdb"
    with pytest.raises(hv.InvalidRequest):
        hv.free_disk_target("floppy", [])


def test_cdrom_bus_follows_the_machine() -> None:
    q35 = hv.DomainDocument.from_xml(SOURCE)
    assert q35.lacks_ide and q35.default_cdrom_bus == "sata"
    pc = hv.DomainDocument.new(name="pc", memory_kib=65536, machine="pc-i440fx-7.2")
    assert not pc.lacks_ide and pc.default_cdrom_bus == "ide"
    arm = hv.DomainDocument.new(name="arm", memory_kib=65536, arch="aarch64", machine="virt")
    assert arm.default_cdrom_bus == "scsi"
