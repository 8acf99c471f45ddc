"""Golden-XML tests of the domain spec: render → compare with the golden file → parse back → same spec."""
from __future__ import annotations

from pathlib import Path

import pytest

from kvmweb import hypervisor as hv

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

SPECS = {
    "memtest_tcg": hv.DomainSpec(
        name="memtest-1", uuid="3b1f6a52-7c2e-4d44-9a0f-6f1c2d3e4b5a", domain_type="qemu", memory_kib=98304,
        vcpus=1,
        disks=(
            hv.DiskSpec(target="sda", device="cdrom", bus="sata", source="/usr/lib/memtest86+/memtest86+x64.iso",
                        format="raw", shared_media=True, boot_order=1),
            hv.DiskSpec(target="vda", source="/var/lib/libvirt/images/memtest-1.qcow2", boot_order=2),
        ),
        graphics=(hv.GraphicsSpec(listen="none"),),
    ),
    "server_kvm": hv.DomainSpec(
        name="web.example_01", uuid="9d2c1a0e-5b7f-4e3d-8c6b-1a2b3c4d5e6f", domain_type="kvm",
        memory_kib=2 * 1024 * 1024, vcpus=2, machine="pc-q35-7.2", description="a <web> & \"db\" box",
        disks=(hv.DiskSpec(target="vda", source="/pool/web.qcow2"),),
        interfaces=(hv.InterfaceSpec(network="isolated-1", mac="52:54:00:12:34:56"),),
        graphics=(hv.GraphicsSpec(listen="address", address="127.0.0.1"),),
        serial_console=True,
    ),
    "diskless": hv.DomainSpec(name="empty", uuid="00000000-0000-4000-8000-000000000001", memory_kib=65536,
                              boot=("cdrom", "hd")),
}


@pytest.mark.parametrize("key", sorted(SPECS))
def test_render_matches_golden_and_parses_back(key: str) -> None:
    spec = SPECS[key]
    xml = spec.to_xml()
    golden = GOLDEN / f"domain_{key}.xml"
    if not golden.exists():  # first run writes it; review it and commit it
        golden.write_text(xml + "\n")
    assert xml.strip() == golden.read_text().strip()
    assert hv.DomainSpec.from_xml(xml) == spec


def test_user_strings_are_escaped_not_pasted() -> None:
    xml = SPECS["server_kvm"].to_xml()
    assert "a &lt;web&gt; &amp; \"db\" box" in xml
    assert hv.DomainSpec.from_xml(xml).description == 'a <web> & "db" box'


@pytest.mark.parametrize("name", ["", "a b", "a/b", "../x", "x" * 65, "<x>", "a'b", 'a"b', "-lead", "é", "a\nb", "x."])
def test_bad_names_refused(name: str) -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.DomainSpec(name=name, memory_kib=65536).to_xml()


@pytest.mark.parametrize("kw", [{"memory_kib": 0}, {"memory_kib": 65536, "vcpus": 0}])
def test_bad_sizes_refused(kw: dict[str, int]) -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.DomainSpec(name="ok", **kw).validate()


def test_parses_foreign_xml_with_units() -> None:
    xml = """<domain type='kvm'><name>x</name><memory unit='GiB'>2</memory><vcpu>3</vcpu>
      <os><type arch='x86_64'>hvm</type></os>
      <devices><disk type='file' device='disk'><source file='/a.img'/><target dev='hda' bus='ide'/></disk>
      <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'/></devices></domain>"""
    spec = hv.DomainSpec.from_xml(xml)
    assert spec.memory_kib == 2 * 1024 * 1024 and spec.vcpus == 3
    assert spec.disks[0].source == "/a.img" and spec.disks[0].bus == "ide"
    assert spec.graphics[0] == hv.GraphicsSpec(listen="address", address="127.0.0.1", port=5901)
