"""Real: a clone made by the portal (POST /api/v1/vms/{uuid}/clone/, a Celery job) is what virt-clone makes.

The source of the comparison carries what virt-clone treats specially: a VNC password and a fixed port, a NIC with
its MAC, a guest-agent channel with a socket path naming the VM, UEFI firmware with an NVRAM file, a title, a disk in
a storage pool. Each side's clone is defined in libvirt and read back (``dumpxml --inactive --security-info``); the
differences from the source (UUIDs, MACs and the names in paths normalised) must be the same set.

Debian's virt-clone (virtinst 4.1) neither moves a file-backed serial log to the clone's name nor follows the SMBIOS
system UUID (later virt-clone releases do both); the portal does both, and the SMBIOS case has its own test below.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from kvmweb import hypervisor as hv
from tests.conftest import PREFIX, memtest_spec, unique_name, virsh
from tests.provisioning.helpers import wait_job

pytestmark = pytest.mark.real
NVRAM_DIR = "/var/lib/libvirt/qemu/nvram"


def rich_source(name: str, disk: str) -> hv.DomainDocument:
    doc = hv.DomainDocument.new(name=name, domain_type="qemu", memory_kib=64 * 1024, machine="q35",
                                description="the source of a clone")
    doc.title = "Clone source"
    os_el = doc.element.find("os")
    loader = etree.SubElement(os_el, "loader", readonly="yes", type="pflash")
    loader.text = "/usr/share/OVMF/OVMF_CODE.fd"
    doc.nvram = f"{NVRAM_DIR}/{name}_VARS.fd"
    doc.add_device(hv.Disk.new(target="vda", source=disk, format="qcow2"))
    doc.add_device(hv.Interface.new(network=f"{PREFIX}never-started", mac="52:54:00:7a:7b:7c"))
    agent = hv.Channel.guest_agent()
    agent.source_path = f"/var/lib/libvirt/qemu/{name}.org.qemu.guest_agent.0"
    doc.add_device(agent)
    gfx = hv.Graphics.vnc(listen="address", port=5907)
    gfx.passwd = "s3cretpw"
    doc.add_device(gfx)
    return doc


def definition(name: str) -> str:
    return virsh("dumpxml", "--inactive", "--security-info", name)


def facts(xml: str, names: dict[str, str]) -> set[tuple[str, str, str]]:
    """(element path, attribute or #text, value) of everything in a definition, with the given strings (UUIDs,
    VM names) replaced by their roles and every MAC address by 'MAC'."""
    root = etree.fromstring(xml.encode())
    tree = root.getroottree()
    found = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        path = re.sub(r"\[\d+\]", "", tree.getpath(el))
        items = list(el.attrib.items()) + ([("#text", el.text.strip())] if (el.text or "").strip() else [])
        for key, value in items:
            for old, role in names.items():
                value = value.replace(old, role)
            found.add((path, key, re.sub(r"52:54:00(:[0-9a-f]{2}){3}", "MAC", value)))
    return found


def differences(source: str, clone: str, names: dict[str, str]) -> tuple[set[tuple[str, str, str]], ...]:
    before, after = facts(source, names), facts(clone, names)
    return after - before, before - after


def test_a_portal_clone_differs_from_its_source_as_a_virt_clone_does(  # type: ignore[no-untyped-def]
        transactional_db, open_pool, alice_api, real_vm, cleanup_domains, celery_worker_proc) -> None:
    source_name, ours, theirs = unique_name("src"), unique_name("ours"), unique_name("theirs")
    cleanup_domains.extend([ours, theirs])
    disk = os.path.join(open_pool["path"], f"{source_name}.qcow2")
    virsh("vol-create-as", open_pool["name"], f"{source_name}.qcow2", "16M", "--format", "qcow2")
    vm = real_vm(rich_source(source_name, disk))
    source_xml = definition(source_name)
    assert "passwd='s3cretpw'" in source_xml

    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": ours, "mode": "full"}, format="json")
    assert reply.status_code == 202, reply.content
    job = wait_job(reply.json()["id"])
    assert job.state == "succeeded", (job.error, list(job.lines.values_list("message", flat=True)))
    ours_xml = definition(ours)

    pools_before = set(virsh("pool-list", "--all", "--name").split())
    printed = subprocess.run(["virt-clone", "--connect", "qemu:///system", "--original", source_name, "--name",
                              theirs, "--auto-clone", "--print-xml"], capture_output=True, text=True, timeout=120)
    for pool in set(virsh("pool-list", "--all", "--name").split()) - pools_before:
        # virt-clone defines a pool for a folder it looks at (the NVRAM's): undo that, never touching the folder
        virsh("pool-destroy", pool, check=False)
        virsh("pool-undefine", pool, check=False)
    assert printed.returncode == 0, printed.stderr
    path = Path(open_pool["path"], "virt-clone.xml")
    path.write_text(printed.stdout)
    virsh("define", str(path))
    theirs_xml = definition(theirs)

    uuid_of = {n: re.search(r"<uuid>([^<]+)</uuid>", x).group(1)  # type: ignore[union-attr]
               for n, x in ((source_name, source_xml), (ours, ours_xml), (theirs, theirs_xml))}
    ours_changes = differences(source_xml, ours_xml, {uuid_of[ours]: "NEW-UUID", uuid_of[source_name]: "SRC-UUID",
                                                     ours: "NEW", source_name: "SRC"})
    theirs_changes = differences(source_xml, theirs_xml, {uuid_of[theirs]: "NEW-UUID",
                                                         uuid_of[source_name]: "SRC-UUID", theirs: "NEW",
                                                         source_name: "SRC"})
    assert ours_changes == theirs_changes
    added, removed = ours_changes
    assert ("/domain/devices/graphics", "passwd", "s3cretpw") not in removed  # the password is kept
    assert ("/domain/os/nvram", "#text", f"{NVRAM_DIR}/NEW_VARS.fd") in added
    assert ("/domain/devices/disk/source", "file", f"{open_pool['path']}/NEW.qcow2") in added
    assert ("/domain/title", "#text", "Clone source") in removed
    assert any(item[0] == "/domain/devices/channel/source" and item[1] == "path" for item in removed)
    virsh("vol-delete", os.path.join(open_pool["path"], f"{ours}.qcow2"))


def test_a_clone_keeps_the_vnc_password(transactional_db, open_pool, alice_api, real_vm,  # type: ignore[no-untyped-def]
                                        cleanup_domains, celery_worker_proc) -> None:
    doc = memtest_spec()
    doc.graphics[0].passwd = "vnc-Pa55"
    vm = real_vm(doc)
    name = unique_name("pwclone")
    cleanup_domains.append(name)
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": name, "mode": "full"}, format="json")
    assert reply.status_code == 202, reply.content
    job = wait_job(reply.json()["id"])
    assert job.state == "succeeded", job.error
    assert "passwd='vnc-Pa55'" in virsh("dumpxml", "--security-info", name)


def test_a_vm_with_an_smbios_system_uuid_clones(transactional_db, open_pool, alice_api,  # type: ignore[no-untyped-def]
                                                real_vm, cleanup_domains, celery_worker_proc) -> None:
    doc = memtest_spec()
    doc.uuid = "6c1e5a3b-2d4f-4e8a-9b7c-0d1e2f3a4b5c"
    sysinfo = etree.SubElement(doc.element, "sysinfo", type="smbios")
    system = etree.SubElement(sysinfo, "system")
    etree.SubElement(system, "entry", name="manufacturer").text = "Acme"
    etree.SubElement(system, "entry", name="uuid").text = doc.uuid
    etree.SubElement(doc.element.find("os"), "smbios", mode="sysinfo")
    vm = real_vm(doc)
    name = unique_name("smbios")
    cleanup_domains.append(name)
    reply = alice_api.post(f"/api/v1/vms/{vm.uuid}/clone/", {"name": name, "mode": "full"}, format="json")
    assert reply.status_code == 202, reply.content
    job = wait_job(reply.json()["id"])
    assert job.state == "succeeded", (job.error, list(job.lines.values_list("message", flat=True)))
    clone = hv.DomainDocument.from_xml(virsh("dumpxml", "--inactive", name))
    assert clone.uuid == job.result["uuid"] != doc.uuid
    assert clone.sysinfo_uuid == clone.uuid
    assert clone.element.findtext("sysinfo/system/entry[@name='manufacturer']") == "Acme"
