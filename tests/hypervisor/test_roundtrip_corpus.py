"""The domain model loses nothing: every domain XML ``virt-install --print-xml`` writes for a wide spread of options,
and libvirt's own ``dumpxml`` of those domains once defined, parse → serialize with no edit into the same elements,
attributes, namespaces and text. On the real host an edit-free save through the portal's model (read with
``INACTIVE | SECURE``, redefined) leaves libvirt's definition exactly as it was, secrets included.

virtinst (virt-install) is a test dependency (Debian's package).
"""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from kvmweb import hypervisor as hv
from tests.conftest import PREFIX, SYSTEM, virsh

# name → virt-install options; {dir} is a folder of the test's own (a storage pool on the real host, so virt-install
# creates no pool of its own for the files it looks at).
CORPUS: dict[str, str] = {
    "debian_vnc_password_sysinfo_agent": (
        "--os-variant debian11 --disk size=1,path={dir}/corpus.qcow2 --network none "
        "--graphics vnc,password=secret,listen=none "
        "--sysinfo system.manufacturer=Acme,system.uuid=0b1a2c3d-1111-4222-8333-444455556666 "
        "--channel unix,target.type=virtio,target.name=org.qemu.guest_agent.0"),
    "windows_spice_tpm_sound": (
        "--os-variant win10 --disk none --network network=kvmwebtest-none,model=e1000e,mac=52:54:00:01:02:03 "
        "--graphics spice,listen=none --sound ich9 --tpm /dev/tpm0,model=tpm-tis --redirdev usb,type=spicevmc "
        "--smartcard passthrough,type=spicevmc --video qxl"),
    "fedora_filesystem_watchdog_rng": (
        "--os-variant fedora36 --disk none --network none --filesystem {dir},share,driver.type=virtiofs "
        "--memorybacking source.type=memfd,access.mode=shared --watchdog i6300esb,action=poweroff "
        "--rng /dev/urandom --memballoon none --serial file,path={dir}/serial.log --panic default "
        "--vsock cid.auto=yes"),
    "i440fx_ide_cdrom_fixed_vnc": (
        "--os-variant generic --machine pc --disk none --disk {dir}/corpus.iso,device=cdrom,bus=ide "
        "--network network=kvmwebtest-none,model=rtl8139 --graphics vnc,port=5999,listen=127.0.0.1 "
        "--input tablet --boot cdrom,hd,menu=on"),
    "direct_kernel_boot_scsi_cdrom": (
        "--os-variant debian11 --disk none --network none "
        "--boot kernel={dir}/vmlinuz,initrd={dir}/initrd,kernel_args='root=/dev/vda ro console=ttyS0' "
        "--controller type=scsi,model=virtio-scsi --disk device=cdrom,bus=scsi --console pty,target_type=serial "
        "--graphics none"),
    "tuned_metadata_qemu_commandline": (
        "--os-variant debian11 --disk none --network none --vcpus 4,sockets=1,cores=2,threads=2 --cpu host-model "
        "--memtune hard_limit=1048576 --cputune vcpupin0.vcpu=0,vcpupin0.cpuset=0 --blkiotune weight=300 "
        "--iothreads 2 --clock offset=localtime --pm suspend_to_mem.enabled=off "
        "--events on_poweroff=destroy,on_crash=restart,on_lockfailure=poweroff --features kvm_hidden=on "
        "--metadata title=Tuned,description='tuned box' --qemu-commandline='-no-hpet'"),
}


def canonical(xml: str) -> bytes:
    """Elements, attributes, namespaces and text as C14N writes them; whitespace between elements ignored."""
    parser = etree.XMLParser(remove_blank_text=True)
    return bytes(etree.tostring(etree.fromstring(xml.encode(), parser), method="c14n"))


def print_xml(uri: str, key: str, folder: str, name: str) -> str:
    args = shlex.split(CORPUS[key].format(dir=folder))
    if uri.startswith("test:"):  # libvirt's test driver emulates no i440fx machine
        args = [a for a in args if a not in ("--machine", "pc")]
    else:
        args += ["--virt-type", "qemu"]
    proc = subprocess.run(["virt-install", "--connect", uri, "--print-xml", "--import", "--name", name,
                           "--memory", "256", "--check", "all=off", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"virt-install for {key} failed: {proc.stderr}"
    return proc.stdout


def corpus_files(folder: str) -> None:
    """The files the corpus names (an ISO, a kernel, an initrd): virt-install looks for them."""
    for name in ("corpus.iso", "vmlinuz", "initrd"):
        Path(folder, name).write_bytes(b"\0" * 2048)


def assert_lossless(xml: str) -> None:
    out = hv.DomainDocument.from_xml(xml).to_xml()
    assert canonical(out) == canonical(xml)


@pytest.mark.parametrize("key", sorted(CORPUS))
def test_virt_install_domains_survive_parse_and_serialize(key: str, tmp_path: Path) -> None:
    corpus_files(str(tmp_path))
    assert_lossless(print_xml("test:///default", key, str(tmp_path), f"corpus-{key}"))


@pytest.mark.real
@pytest.mark.parametrize("key", sorted(CORPUS))
def test_libvirts_own_definitions_survive_and_redefine_unchanged(key: str, test_pool: dict[str, str],
                                                                 cleanup_domains: list[str]) -> None:
    folder = test_pool["path"]
    corpus_files(folder)
    virsh("pool-refresh", test_pool["name"])
    pools_before = set(virsh("pool-list", "--all", "--name").split())
    name = f"{PREFIX}corpus-{key.replace('_', '-')}"[:64]
    cleanup_domains.append(name)
    xml = print_xml(SYSTEM, key, folder, name)
    new_pools = set(virsh("pool-list", "--all", "--name").split()) - pools_before
    for pool in new_pools:  # virt-install looked at a path outside any pool: undo its side effect, then fail
        virsh("pool-destroy", pool, check=False)
        virsh("pool-undefine", pool, check=False)
    assert not new_pools, f"virt-install defined pools {new_pools}: a corpus path lies outside the test pool"
    assert_lossless(xml)
    path = Path(folder, "domain.xml")
    path.write_text(xml)
    virsh("define", str(path))
    for flags in ((), ("--inactive",), ("--inactive", "--security-info")):
        assert_lossless(virsh("dumpxml", *flags, name))

    # libvirt's own save of its own definition may reorder controllers once: compare against that fixed point.
    path.write_text(virsh("dumpxml", "--inactive", "--security-info", name))
    virsh("define", str(path))
    before = virsh("dumpxml", "--inactive", "--security-info", name)
    dom = hv.domain_lookup_by_name(hv.registry.connection(SYSTEM), name)
    with dom.editing():
        pass  # an edit-free save through the model
    after = virsh("dumpxml", "--inactive", "--security-info", name)
    assert canonical(after) == canonical(before)
    if "password" in CORPUS[key]:
        assert "passwd='secret'" in after  # the secret went through the round trip
