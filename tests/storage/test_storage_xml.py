"""Fast: golden XML for volume and pool specs (render → compare → parse back), and the clone definition."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kvmweb import hypervisor as hv

GOLDEN = Path(__file__).resolve().parent / "golden"
G = 1024**3

SPECS: dict[str, hv.VolumeSpec | hv.PoolSpec] = {
    "volume_qcow2": hv.VolumeSpec(name="web-1.qcow2", capacity=20 * G),
    "volume_raw": hv.VolumeSpec(name="scratch.raw", capacity=512 * 1024**2, format="raw", allocation=512 * 1024**2),
    "volume_overlay": hv.VolumeSpec(name="web-2.qcow2", capacity=20 * G, backing_path="/pool/web-1.qcow2",
                                    backing_format="qcow2"),
    "pool_dir": hv.PoolSpec(name="tank", target_path="/srv/kvm/tank",
                            uuid="0d6b7c0a-2f57-4ab4-9b0e-8f9d5c2c1a11"),
}


def _regen(path: Path, xml: str) -> None:
    if os.environ.get("KVMWEB_REGEN_GOLDEN"):
        path.write_text(xml + "\n")


@pytest.mark.parametrize("key", sorted(SPECS))
def test_render_matches_golden_and_parses_back(key: str) -> None:
    spec = SPECS[key]
    xml = spec.to_xml()
    golden = GOLDEN / f"{key}.xml"
    _regen(golden, xml)
    assert xml == golden.read_text().rstrip("\n")
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


def test_disk_xml_for_attach() -> None:
    xml = hv.disk_xml(hv.DiskSpec(target="vdb", source="/p/x.qcow2"))
    assert xml == ('<disk type="file" device="disk"><driver name="qemu" type="qcow2" /><source file="/p/x.qcow2" />'
                   '<target dev="vdb" bus="virtio" /></disk>')


SOURCE = """<domain type='qemu'><name>web</name><uuid>3b1f6a52-7c2e-4d44-9a0f-6f1c2d3e4b5a</uuid>
<description>mine</description><memory unit='KiB'>98304</memory>
<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/p/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/iso/m.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
<interface type='network'><mac address='52:54:00:11:22:33'/><source network='iso'/><model type='virtio'/></interface>
<graphics type='vnc' port='5901' autoport='no'><listen type='address' address='127.0.0.1'/></graphics>
</devices></domain>"""


def test_clone_definition_has_new_identity() -> None:
    xml = hv.clone_domain_xml(SOURCE, name="web-clone", disk_sources={"vda": "/p/web-clone.qcow2"})
    root = ET.fromstring(xml)
    assert root.findtext("name") == "web-clone"
    assert root.find("uuid") is None and root.find("description") is None and root.find("os/nvram") is None
    assert root.find("devices/interface/mac") is None  # libvirt makes a new MAC
    disks = {d.find("target").get("dev"): d.find("source").get("file") for d in root.findall("devices/disk")}
    assert disks == {"vda": "/p/web-clone.qcow2", "sda": "/iso/m.iso"}  # the ISO stays shared
    gfx = root.find("devices/graphics")
    assert gfx.get("autoport") == "yes" and gfx.get("port") is None


def test_clone_definition_refuses_bad_names() -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.clone_domain_xml(SOURCE, name="a/b", disk_sources={})


def test_boot_order_read() -> None:
    assert hv.boot_order(SOURCE) == []
    assert hv.boot_order("<domain><os><boot dev='cdrom'/><boot dev='hd'/></os></domain>") == ["cdrom", "hd"]
    xml = ("<domain><os/><devices><disk device='disk'><boot order='2'/></disk>"
           "<disk device='cdrom'><boot order='1'/></disk><interface><boot order='3'/></interface></devices></domain>")
    assert hv.boot_order(xml) == ["cdrom", "hd", "network"]


def test_free_target() -> None:
    assert hv.storage.free_target("virtio", ["vda", "sda"]) == "vdb"
    assert hv.storage.free_target("sata", ["vda", "sda"]) == "sdb"
    with pytest.raises(hv.InvalidRequest):
        hv.storage.free_target("floppy", [])
