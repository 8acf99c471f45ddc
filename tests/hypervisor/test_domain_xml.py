"""The one domain model: building new domains (golden XML), reading them back, and editing existing definitions
without losing what the model does not know."""
from __future__ import annotations

import pytest
from lxml import etree

from kvmweb import hypervisor as hv

MEMTEST = "/usr/lib/memtest86+/memtest86+x64.iso"


def memtest_tcg() -> hv.DomainDocument:
    doc = hv.DomainDocument.new(name="memtest-1", uuid="3b1f6a52-7c2e-4d44-9a0f-6f1c2d3e4b5a", domain_type="qemu",
                                memory_kib=98304, vcpus=1, boot=())
    doc.add_device(hv.Disk.new(target="sda", device="cdrom", bus="sata", source=MEMTEST, format="raw",
                               shared_media=True, boot_order=1))
    doc.add_device(hv.Disk.new(target="vda", source="/var/lib/libvirt/images/memtest-1.qcow2", boot_order=2))
    doc.add_device(hv.Graphics.vnc(listen="none"))
    doc.add_device(hv.Video.new())
    return doc


def server_kvm() -> hv.DomainDocument:
    doc = hv.DomainDocument.new(name="web.example_01", uuid="9d2c1a0e-5b7f-4e3d-8c6b-1a2b3c4d5e6f", domain_type="kvm",
                                memory_kib=2 * 1024 * 1024, vcpus=2, machine="pc-q35-7.2",
                                description="a <web> & \"db\" box")
    doc.add_device(hv.Disk.new(target="vda", source="/pool/web.qcow2"))
    doc.add_device(hv.Interface.new(network="isolated-1", mac="52:54:00:12:34:56"))
    doc.add_device(hv.Serial.pty())
    doc.add_device(hv.Console.pty())
    doc.add_device(hv.Graphics.vnc(listen="address", address="127.0.0.1"))
    doc.add_device(hv.Video.new())
    return doc


def diskless() -> hv.DomainDocument:
    return hv.DomainDocument.new(name="empty", uuid="00000000-0000-4000-8000-000000000001", memory_kib=65536,
                                 boot=("cdrom", "hd"))


BUILT = {"memtest_tcg": memtest_tcg, "server_kvm": server_kvm, "diskless": diskless}


def canonical(xml: str) -> bytes:
    """Elements, attributes, namespaces and text as C14N writes them, whitespace between elements ignored."""
    parser = etree.XMLParser(remove_blank_text=True)
    return bytes(etree.tostring(etree.fromstring(xml.encode(), parser), method="c14n"))


@pytest.mark.parametrize("key", sorted(BUILT))
def test_new_domains_render_as_their_golden_files(key: str, golden) -> None:  # type: ignore[no-untyped-def]
    xml = BUILT[key]().to_xml()
    golden(f"domain_{key}.xml", xml)
    assert canonical(hv.DomainDocument.from_xml(xml).to_xml()) == canonical(xml)


def test_reading_back_what_was_built() -> None:
    doc = hv.DomainDocument.from_xml(server_kvm().to_xml())
    assert (doc.name, doc.uuid, doc.domain_type, doc.vcpus, doc.memory_kib) == (
        "web.example_01", "9d2c1a0e-5b7f-4e3d-8c6b-1a2b3c4d5e6f", "kvm", 2, 2 * 1024 * 1024)
    assert doc.machine == "pc-q35-7.2" and doc.arch == "x86_64" and doc.features == ("acpi", "apic")
    assert doc.description == 'a <web> & "db" box'
    assert [d.info() for d in doc.disks] == [hv.DiskInfo(
        target="vda", device="disk", bus="virtio", type="file", source="/pool/web.qcow2", format="qcow2",
        readonly=False, shared_media=False, boot_order=None)]
    assert [n.info() for n in doc.interfaces] == [hv.NicInfo(
        mac="52:54:00:12:34:56", type="network", source="isolated-1", model="virtio", target=None, link_up=True)]
    assert doc.vnc_display() == hv.VncDisplay(listen="address", address="127.0.0.1", port=None)
    assert doc.has_serial_console and doc.boot_order == ["hd"]
    memtest = hv.DomainDocument.from_xml(memtest_tcg().to_xml())
    assert memtest.boot_order == ["cdrom", "hd"]
    assert memtest.disks[0].info().shared_media and memtest.disks[0].info().is_cdrom
    assert memtest.vnc_display() == hv.VncDisplay(listen="none", address=None, port=None)


def test_user_strings_are_escaped_not_pasted() -> None:
    xml = server_kvm().to_xml()
    assert "a &lt;web&gt; &amp; \"db\" box" in xml
    doc = hv.DomainDocument.new(name="ok", memory_kib=65536)
    doc.add_device(hv.Disk.new(target="vda", source="/p/a'b\"<c>&.qcow2"))
    assert hv.DomainDocument.from_xml(doc.to_xml()).disks[0].source == "/p/a'b\"<c>&.qcow2"


@pytest.mark.parametrize("name", ["", "a b", "a/b", "../x", "x" * 65, "<x>", "a'b", 'a"b', "-lead", "é", "a\nb", "x."])
def test_bad_names_refused(name: str) -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.DomainDocument.new(name=name, memory_kib=65536).validate()


@pytest.mark.parametrize("kw", [{"memory_kib": 0}, {"memory_kib": 65536, "vcpus": 0},
                                {"memory_kib": 65536, "uuid": "not-a-uuid"}])
def test_bad_sizes_and_uuids_refused(kw: dict[str, object]) -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.DomainDocument.new(name="ok", **kw).validate()  # type: ignore[arg-type]


def test_two_disks_on_one_target_refused() -> None:
    doc = hv.DomainDocument.new(name="ok", memory_kib=65536)
    doc.add_device(hv.Disk.new(target="vda", source="/a"))
    doc.add_device(hv.Disk.new(target="vda", source="/b"))
    with pytest.raises(hv.InvalidRequest, match="same target"):
        doc.validate()


def test_not_well_formed_xml_is_a_clear_error() -> None:
    with pytest.raises(hv.InvalidRequest, match="well-formed"):
        hv.DomainDocument.from_xml("<domain><name>x</domain>")


def test_external_entities_are_not_expanded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET")
    xml = (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'
           "<domain><name>&x;</name></domain>")
    doc = hv.DomainDocument.from_xml(xml)
    assert "TOP-SECRET" not in doc.to_xml() and doc.name != "TOP-SECRET"


def test_foreign_xml_with_units_and_legacy_forms() -> None:
    xml = """<domain type='kvm'><name>x</name><memory unit='GiB'>2</memory><currentMemory unit='MiB'>512</currentMemory>
      <vcpu>3</vcpu><os><type arch='x86_64'>hvm</type></os>
      <devices><disk type='file' device='disk'><source file='/a.img'/><target dev='hda' bus='ide'/></disk>
      <disk type='volume' device='disk'><source pool='p' volume='v.qcow2'/><target dev='vdb' bus='virtio'/></disk>
      <graphics type='vnc' port='5901' autoport='no' listen='127.0.0.1'/></devices></domain>"""
    doc = hv.DomainDocument.from_xml(xml)
    assert doc.memory_kib == 2 * 1024 * 1024 and doc.current_memory_kib == 512 * 1024 and doc.vcpus == 3
    assert [(d.source, d.bus) for d in doc.disks] == [("/a.img", "ide"), ("p/v.qcow2", "virtio")]
    assert doc.vnc_display() == hv.VncDisplay(listen="address", address="127.0.0.1", port=5901)
    assert doc.vnc_display().display == "127.0.0.1:1"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------ lossless edits
FOREIGN = """<domain type='kvm' id='7' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>legacy</name>
  <uuid>11111111-2222-4333-8444-555555555555</uuid>
  <title>Legacy box</title>
  <metadata>
    <app:info xmlns:app='https://example.org/app/1'><app:owner team='blue'>ops</app:owner></app:info>
  </metadata>
  <memory unit='KiB'>262144</memory>
  <vcpu placement='static' cpuset='0-1'>2</vcpu>
  <sysinfo type='smbios'><system><entry name='manufacturer'>Acme</entry>
    <entry name='uuid'>11111111-2222-4333-8444-555555555555</entry></system></sysinfo>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>
    <nvram>/var/lib/libvirt/qemu/nvram/legacy_VARS.fd</nvram><boot dev='hd'/><smbios mode='sysinfo'/></os>
  <cpu mode='host-passthrough'><topology sockets='1' cores='2' threads='1'/></cpu>
  <!-- kept by hand -->
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none' discard='unmap'/>
      <source file='/pool/legacy.qcow2'/><target dev='vda' bus='virtio'/><iotune><total_iops_sec>500</total_iops_sec></iotune>
      <boot order='1'/><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></disk>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='lan'/><model type='virtio'/>
      <target dev='vnet3'/><bandwidth><inbound average='1000'/></bandwidth></interface>
    <serial type='file'><source path='/var/log/legacy.log'/><target port='0'/></serial>
    <channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/legacy.org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='vnc' port='5907' autoport='no' websocket='5707' passwd='s3cret' keymap='de'><listen type='address' address='127.0.0.1'/></graphics>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
    <watchdog model='i6300esb' action='reset'/>
  </devices>
  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>
</domain>"""


def test_parse_and_serialize_keeps_everything() -> None:
    assert canonical(hv.DomainDocument.from_xml(FOREIGN).to_xml()) == canonical(FOREIGN)
    assert "<!-- kept by hand -->" in hv.DomainDocument.from_xml(FOREIGN).to_xml()


def _all(xml: str) -> set[tuple[str, str, str]]:
    """Every (element path, attribute, value) and (element path, '#text', text) of a document (paths without
    sibling positions, so that adding a device does not rename its neighbours)."""
    import re

    root = etree.fromstring(xml.encode())
    tree = root.getroottree()
    found = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        path = re.sub(r"\[\d+\]", "", tree.getpath(el))
        found |= {(path, k, v) for k, v in el.attrib.items()}
        if (el.text or "").strip():
            found.add((path, "#text", el.text.strip()))
    return found


def test_an_edit_changes_only_what_it_edits() -> None:
    doc = hv.DomainDocument.from_xml(FOREIGN)
    doc.set_boot_order(["cdrom", "hd"])
    doc.add_device(hv.Disk.new(target="sda", device="cdrom", bus="sata", source=None, format="raw"))
    before, after = _all(FOREIGN), _all(doc.to_xml())
    lost = {item for item in before - after if not item[0].endswith("/boot")}
    assert lost == set()  # nothing but the boot entries changed: secrets, namespaces, tuning all stay
    assert doc.boot_order == ["cdrom", "hd"]
    assert doc.graphics[0].passwd == "s3cret"
    assert doc.element.find("{http://libvirt.org/schemas/domain/qemu/1.0}commandline") is not None
    assert doc.disk("vda").boot_order is None  # type: ignore[union-attr]  # per-device orders gave way


def test_devices_are_added_beside_their_kind_and_removed_exactly() -> None:
    doc = hv.DomainDocument.from_xml(FOREIGN)
    doc.add_device(hv.Disk.new(target="vdb", source="/pool/data.qcow2"))
    tags = [d.tag for d in doc.devices()]
    assert tags[:2] == ["disk", "disk"]
    doc.remove_device(doc.disk("vdb"))  # type: ignore[arg-type]
    assert canonical(doc.to_xml()) == canonical(FOREIGN)
    with pytest.raises(hv.InvalidRequest):
        doc.remove_device(hv.Disk.new(target="vdz"))


def test_move_disk_to_another_bus_renames_it_and_drops_its_address() -> None:
    doc = hv.DomainDocument.from_xml(FOREIGN)
    assert doc.move_disk("vda", "sata") == "sda"
    disk = doc.disk("sda")
    assert disk is not None and disk.bus == "sata" and disk.element.find("address") is None
    assert disk.element.find("iotune/total_iops_sec").text == "500"  # the rest of the disk stays
    with pytest.raises(hv.InvalidRequest):
        doc.move_disk("vdq", "sata")


def test_set_boot_order_refusals() -> None:
    doc = hv.DomainDocument.from_xml(FOREIGN)
    for bad in ([], ["hd", "hd"], ["floppy"]):
        with pytest.raises(hv.InvalidRequest):
            doc.set_boot_order(bad)


def test_metadata_of_our_own_namespace_leaves_others_alone() -> None:
    doc = hv.DomainDocument.from_xml(FOREIGN)
    ns = "https://kvmweb.example/xmlns/vm/1"
    mine = doc.set_metadata(ns, "kvmweb", "vm")
    etree.SubElement(mine, f"{{{ns}}}note").text = "hello"
    again = hv.DomainDocument.from_xml(doc.to_xml())
    found = again.metadata(ns, "vm")
    assert found is not None and found.findtext(f"{{{ns}}}note") == "hello"
    assert again.metadata("https://example.org/app/1", "info") is not None


# ------------------------------------------------------------------------------------------------ clones
def test_clone_as_makes_what_virt_clone_makes() -> None:
    source = hv.DomainDocument.from_xml(FOREIGN)
    new_uuid = "99999999-8888-4777-8666-555555555555"
    clone = source.clone_as(name="legacy-clone", uuid=new_uuid, disk_sources={"vda": "/pool/legacy-clone.qcow2"},
                            taken_macs={"52:54:00:aa:bb:cc"})
    assert clone.name == "legacy-clone" and clone.uuid == new_uuid and clone.sysinfo_uuid == new_uuid
    assert clone.title is None and clone.element.get("id") is None
    assert clone.description == source.description
    nic = clone.interfaces[0]
    assert nic.mac != "52:54:00:aa:bb:cc" and nic.mac.startswith("52:54:00:") and nic.target_dev is None  # type: ignore[union-attr]
    assert nic.element.find("bandwidth/inbound").get("average") == "1000"
    gfx = clone.graphics[0]
    assert (gfx.port, gfx.autoport, gfx.websocket, gfx.passwd) == (-1, "yes", -1, "s3cret")
    assert clone.channels[0].source_path is None and clone.channels[0].source_mode == "bind"
    assert clone.serials[0].source_path == "/var/log/legacy-clone.log"
    assert clone.nvram == "/var/lib/libvirt/qemu/nvram/legacy-clone_VARS.fd"
    disk = clone.disk("vda")
    assert disk is not None and disk.source == "/pool/legacy-clone.qcow2"
    assert disk.element.find("iotune") is not None and disk.element.find("driver").get("cache") == "none"
    assert source.name == "legacy" and source.interfaces[0].mac == "52:54:00:aa:bb:cc"  # the source is untouched
    assert clone.element.find("{http://libvirt.org/schemas/domain/qemu/1.0}commandline") is not None


def test_clone_file_paths_follow_virt_clone() -> None:
    assert hv.clone_file_path("web", "web2", "/var/log/web.log") == "/var/log/web2.log"
    assert hv.clone_file_path("web", "web2", "/var/log/console.log") == "/var/log/console-clone.log"
    assert hv.clone_file_path("web", "web2", "/var/log/webconsole") == "/var/log/webconsole-clone"


def test_macs_come_from_qemus_range_and_avoid_taken_ones() -> None:
    import random

    rng = random.Random(1)
    first = hv.random_mac(random.Random(1))
    assert hv.random_mac(rng, taken={first}) != first
    assert hv.normalize_mac("52-54-00-AB-CD-01") == "52:54:00:ab:cd:01"
    for bad in ("01:00:5e:00:00:01", "00:00:00:00:00:00", "52:54:00:12:34", "zz:54:00:12:34:56"):
        with pytest.raises(hv.InvalidRequest):
            hv.normalize_mac(bad)
