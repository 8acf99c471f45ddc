"""Fast tests of the devices a new VM gets (virt-install parity): osinfo-db read as virtinst reads it, for every OS
variant; the device set per variant; what the test driver's host gets."""
from __future__ import annotations

import json
import os
import subprocess
from collections import Counter

import pytest

from kvmweb import hypervisor as hv
from kvmweb.provisioning.devices import PCIE_ROOT_PORTS, Platform, default_devices
from kvmweb.provisioning.osinfo import _catalogue, os_variant
from kvmweb.provisioning.services import vm_create_validate
from tests.conftest import unique_name
from tests.provisioning.helpers import device_kinds

VIRTINST = "/usr/share/virt-manager"
SUPPORT = ("virtio_block", "virtio_net", "virtio_serial", "virtio_rng", "virtio_balloon", "virtio_gpu", "usb3", "q35")

# virtinst's own answers for every OS it knows, printed by the system Python that virt-install runs on.
_VIRTINST_SCRIPT = f"""
import json, sys
sys.path.insert(0, {VIRTINST!r})
from virtinst import OSDB
out = {{}}
for v in OSDB.list_os():
    out[v.name] = dict(
        virtio_block=v.supports_virtiodisk(), virtio_net=v.supports_virtionet(),
        virtio_serial=v.supports_virtioserial(), virtio_rng=v.supports_virtiorng(),
        virtio_balloon=v.supports_virtioballoon(), virtio_gpu=v.supports_virtiogpu(),
        usb3=v.supports_usb3(), q35=v.supports_chipset_q35())
json.dump(out, sys.stdout)
"""


def test_osinfo_reads_every_variant_as_virtinst_does() -> None:
    """For each of osinfo-db's ~800 OSes, what the OS supports (virtio disk/net/serial/rng/balloon/gpu, USB 3, the
    q35 chipset) is what virtinst (through libosinfo) says: devices inherited through derives-from and clones,
    ``supported="false"`` honoured, the RHEL 6 virtio-serial exception kept."""
    if not os.path.isdir(f"{VIRTINST}/virtinst"):
        pytest.fail("virtinst is not installed: `make test` installs virtinst (Debian package)")
    out = subprocess.run(["/usr/bin/python3", "-c", _VIRTINST_SCRIPT], capture_output=True, text=True, timeout=120,
                         check=True)
    theirs = json.loads(out.stdout)
    ours = _catalogue()
    assert len(theirs) > 500
    missing = sorted(set(theirs) - set(ours))
    assert not missing, missing
    wrong = [f"{name}.{what}: ours {getattr(ours[name], what)}, virtinst {value}"
             for name, answers in theirs.items() for what, value in answers.items()
             if getattr(ours[name], what) != value]
    assert not wrong, wrong[:20]


def _kinds(variant: str, platform: Platform) -> Counter[tuple[str, ...]]:
    found = os_variant(variant)
    assert found is not None, variant
    doc = hv.DomainDocument.new(name="kvmwebtest-kinds", memory_kib=262144, domain_type=platform.domain_type,
                                machine=platform.machine)
    for device in default_devices(found, platform, display=hv.Graphics.vnc(listen="none")):
        doc.add_device(device)
    return device_kinds(doc.to_xml())


USB2 = {("controller", "usb", "ich9-ehci1"): 1, ("controller", "usb", "ich9-uhci1"): 1,
        ("controller", "usb", "ich9-uhci2"): 1, ("controller", "usb", "ich9-uhci3"): 1}
BASE = {("console", "pty"): 1, ("input", "tablet", "usb"): 1, ("graphics", "vnc"): 1}
Q35 = {("controller", "usb", "qemu-xhci"): 1, ("controller", "pci", "pcie-root"): 1,
       ("controller", "pci", "pcie-root-port"): PCIE_ROOT_PORTS}
VIRTIO = {("channel", "org.qemu.guest_agent.0"): 1, ("memballoon", "virtio"): 1, ("rng", "virtio"): 1}


@pytest.mark.parametrize(("variant", "platform", "expected"), [
    ("generic", Platform("qemu"), {**BASE, **USB2, ("video", "vga"): 1}),
    ("msdos6.22", Platform("kvm"), {**BASE, **USB2, ("video", "vga"): 1}),
    ("winxp", Platform("kvm"), {**BASE, **USB2, ("video", "vga"): 1}),
    ("win10", Platform("kvm", "q35"), {**BASE, **Q35, ("video", "vga"): 1}),
    ("debian11", Platform("kvm", "q35", "virtio"), {**BASE, **Q35, **VIRTIO, ("video", "virtio"): 1}),
    ("rhel9.0", Platform("qemu", "q35", "virtio"), {**BASE, **Q35, **VIRTIO, ("video", "virtio"): 1}),
    ("alpinelinux3.17", Platform("qemu", "q35"), {**BASE, **Q35, **VIRTIO, ("video", "vga"): 1}),
    # a host without q35 (no such machine): the same devices on i440fx, no PCIe ports
    ("debian11", Platform("kvm", None, "virtio"), {**BASE, **VIRTIO, ("controller", "usb", "qemu-xhci"): 1,
                                                   ("video", "virtio"): 1}),
    # libvirt's test driver is not QEMU: no guest agent channel, rng or balloon (virt-install gives none there)
    ("debian11", Platform("test"), {**BASE, ("controller", "usb", "qemu-xhci"): 1, ("video", "vga"): 1}),
])
def test_default_devices_per_variant(variant: str, platform: Platform, expected: dict[tuple[str, ...], int]) -> None:
    """What virt-install 4.1 printed on this project's Debian 12 host for the same variants (`virt-install
    --print-xml --dry-run --import --os-variant X --disk none --network none --graphics vnc,listen=none`); the real
    test test_devices_real.py asks virt-install itself."""
    assert _kinds(variant, platform) == Counter(expected)


@pytest.mark.django_db
def test_new_vm_on_the_test_driver_gets_console_and_tablet(owner, open_testdrv, test_host) -> None:  # type: ignore[no-untyped-def]
    """The test driver offers no q35 and no domain capabilities: i440fx (no machine named) and VGA, as virt-install
    gives there; the serial console and the tablet are always there."""
    from kvmweb.provisioning.services import build_document

    req = vm_create_validate(actor=owner, host=test_host.pk, name=unique_name(), memory="128",
                             os_variant_id="debian11")
    assert (req.machine, req.video) == (None, "vga")
    doc = build_document(req, uuid="9b4f3f5e-3a57-4c1e-9a53-1f0f7a3f2b10", domain_type="test")
    assert doc.machine is None and doc.has_serial_console
    assert ("input", "tablet", "usb") in device_kinds(doc.to_xml())
