"""virt-install device parity on qemu:///system: the devices of a new VM are the ones virt-install gives the same OS
variant on this host; a VM created through the API has a working text console and an absolute pointer."""
from __future__ import annotations

import subprocess
import tempfile
import threading

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from kvmweb.provisioning.services import build_document, vm_create_validate
from tests.conftest import unique_name, virsh
from tests.provisioning.helpers import device_kinds, wait_job

pytestmark = [pytest.mark.real]

VARIANTS = ("generic", "debian11", "win10", "rhel9.0", "alpinelinux3.17", "winxp", "msdos6.22")


def _virt_install_xml(variant: str, name: str) -> str:
    """What virt-install defines for the variant (printed, nothing made: --dry-run --print-xml)."""
    out = subprocess.run(
        ["virt-install", "--connect", "qemu:///system", "--print-xml", "--dry-run", "--import", "--virt-type",
         "qemu", "--os-variant", variant, "--name", name, "--memory", "256", "--disk", "none", "--network", "none",
         "--graphics", "vnc,listen=none"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.django_db
@pytest.mark.parametrize("variant", VARIANTS)
def test_devices_equal_virt_installs(variant, qemu_host, owner, cleanup_domains) -> None:  # type: ignore[no-untyped-def]
    """The kinds of devices (and how many of each) in the domain the portal defines equal virt-install's for the
    same OS variant, host and domain type, without disks and NICs on either side (``--disk none --network none``).

    Nothing is left out of the comparison but ``<emulator>``, which is not a device: libvirt fills in the host's
    QEMU binary when the domain is defined. Controllers are compared too (USB 2 or 3, the q35 root complex and its
    14 PCIe root ports), and so is the machine family (q35 or i440fx). libvirt then accepts the definition, and adds
    the serial port the console sits on."""
    qemu_host.domain_type = "qemu"
    qemu_host.save()
    name = unique_name("par")
    req = vm_create_validate(actor=owner, host=qemu_host, name=name, memory="256", os_variant_id=variant)
    ours = build_document(req, uuid="9b4f3f5e-3a57-4c1e-9a53-1f0f7a3f2b10", domain_type="qemu").to_xml()
    theirs = _virt_install_xml(variant, name)
    assert device_kinds(ours) == device_kinds(theirs)
    machine = hv.DomainDocument.from_xml(theirs).machine or ""
    assert ("q35" in (req.machine or "")) == ("q35" in machine), (req.machine, machine)

    cleanup_domains.append(name)
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as xml_file:
        xml_file.write(ours)
        xml_file.flush()
        virsh("define", xml_file.name)
    defined = device_kinds(virsh("dumpxml", "--inactive", name))
    assert defined[("serial", "pty")] == 1 and defined[("console", "pty")] == 1
    assert defined[("input", "tablet", "usb")] == 1
    virsh("undefine", name)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("variant", ["generic", "debian11"])
def test_created_vm_has_a_text_console_and_a_tablet(
    variant, qemu_host, owner, memtest_iso, celery_worker_proc, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    """memtest86+ under TCG, created through the API for an old-style (i440fx, USB 2) and a modern (q35, virtio)
    variant: it runs, its serial console opens (the text console works), QEMU has a USB tablet."""
    name = unique_name("dev")
    cleanup_domains.append(name)
    qemu_host.domain_type = "qemu"
    qemu_host.save()
    client = Client()
    client.force_login(owner)
    try:
        response = client.post("/api/v1/vms/", {
            "host": qemu_host.pk, "name": name, "vcpus": 1, "memory": "96", "iso": memtest_iso.pk,
            "os_variant": variant, "start": True,
        }, content_type="application/json")
        assert response.status_code == 202, response.content
        job = wait_job(response.json()["job"]["id"])
        assert job.state == Job.State.SUCCEEDED, job.error
        assert virsh("domstate", name).strip() == "running"

        xml = virsh("dumpxml", name)
        kinds = device_kinds(xml)
        assert kinds[("serial", "pty")] == 1 and kinds[("console", "pty")] == 1
        assert kinds[("input", "tablet", "usb")] == 1
        machine = hv.DomainDocument.from_xml(xml).machine or ""
        if variant == "debian11":
            assert "q35" in machine
            assert kinds[("channel", "org.qemu.guest_agent.0")] == 1
            assert kinds[("rng", "virtio")] == 1 and kinds[("memballoon", "virtio")] == 1
        else:
            assert "i440fx" in machine
            assert kinds[("channel", "org.qemu.guest_agent.0")] == 0
        assert virsh("ttyconsole", name).strip().startswith("/dev/pts/")

        # The text console: libvirt's console stream opens (what the portal's text console uses), and a second
        # opener is refused while it is open (it really is open).
        dom = hv.domain_lookup(hv.registry.connection("qemu:///system"), response.json()["uuid"])
        closed = threading.Event()
        console = dom.open_serial_console(lambda _data: None, lambda _reason: closed.set())
        try:
            console.write(b"\r")
            with pytest.raises(hv.OperationInvalid, match="already open"):
                dom.open_serial_console(lambda _data: None, lambda _reason: None)
        finally:
            console.close()
        assert closed.is_set()

        # QEMU itself has the USB tablet, an absolute pointer. (It becomes QEMU's current mouse once the guest's USB
        # driver takes it; memtest86+ has none, so the PS/2 mouse stays marked current here.)
        mice = virsh("qemu-monitor-command", name, "--hmp", "info mice")
        assert "QEMU HID Tablet (absolute)" in mice, mice
    finally:
        virsh("destroy", name, check=False)
