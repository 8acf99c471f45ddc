"""The devices and machine type ``virt-install`` gives a new guest by default, for its OS variant and its host.

Our own reading of virt-install's rules (virtinst ``Guest.set_defaults``), with the OS's abilities from osinfo-db
(:mod:`.osinfo`):

- **machine**: ``q35`` on x86 when the host offers it and the OS knows the q35 chipset (and virtio 1.0 if it has
  virtio at all); otherwise the host's default (i440fx, ``pc``), which libvirt picks when none is named.
- **console**: a ``pty`` console on the first serial port, always (libvirt adds the matching ``<serial>``): the text
  console.
- **USB**: a ``qemu-xhci`` controller (USB 3, 15 ports) for OSes with its driver, else USB 2 (``ich9-ehci1`` with
  its three UHCI companions); a **USB tablet** on it, so the pointer is absolute.
- **guest agent channel** (``org.qemu.guest_agent.0``, a UNIX socket libvirt names), **virtio-rng**
  (``/dev/urandom``) and a **virtio memballoon**: on QEMU/KVM, for OSes with the virtio driver for each.
- **video**: ``virtio`` for OSes with the virtio-gpu driver when the host's QEMU has it, else ``vga``.
- **PCIe root ports** on q35: the root complex and 14 root ports, so disks and NICs can be hot-plugged later
  (libvirt only adds the ports the devices present at definition need).
"""
from __future__ import annotations

from dataclasses import dataclass

from kvmweb import hypervisor as hv

from .osinfo import OsVariant

QEMU_DOMAIN_TYPES = ("kvm", "qemu")
X86 = ("x86_64", "i686")
PCIE_ROOT_PORTS = 14  # virt-install's number: room to hot-plug devices after the guest is defined
XHCI_PORTS = 15  # the most QEMU's qemu-xhci supports
USB2_COMPANIONS = (("ich9-uhci1", 0), ("ich9-uhci2", 2), ("ich9-uhci3", 4))  # model, first EHCI port it serves


@dataclass(frozen=True)
class Platform:
    """What the host decides about a new guest: its domain type, machine type (None: libvirt's default) and the
    video model."""

    domain_type: str
    machine: str | None = None
    video: str = "vga"

    @property
    def q35(self) -> bool:
        return "q35" in (self.machine or "")


def platform_for(variant: OsVariant, *, domain_type: str, facts: hv.HostFacts, conn: hv.Connection) -> Platform:
    """The machine type and video model ``virt-install`` would choose for ``variant`` on this host."""
    machine = "q35" if variant.q35 and facts.arch in X86 and "q35" in facts.machines else None
    video = "vga"
    if variant.virtio_gpu and domain_type in QEMU_DOMAIN_TYPES and \
            "virtio" in hv.host_video_models(conn, domain_type=domain_type, arch=facts.arch, machine=machine):
        video = "virtio"
    return Platform(domain_type=domain_type, machine=machine, video=video)


def default_devices(variant: OsVariant, platform: Platform, *, display: hv.Graphics) -> list[hv.Device]:
    """The devices besides disks and NICs that a new guest gets (see the module's description), with ``display``
    among them, in the order ``virt-install`` writes them."""
    qemu = platform.domain_type in QEMU_DOMAIN_TYPES
    devices: list[hv.Device] = []
    if variant.usb3:
        devices.append(hv.Controller.usb("qemu-xhci", ports=XHCI_PORTS))
    else:
        devices.append(hv.Controller.usb("ich9-ehci1"))
        devices += [hv.Controller.usb(model, master_startport=port) for model, port in USB2_COMPANIONS]
    if platform.q35:
        devices.append(hv.Controller.pci("pcie-root"))
        devices += [hv.Controller.pci("pcie-root-port") for _ in range(PCIE_ROOT_PORTS)]
    devices.append(hv.Console.pty())
    if qemu and variant.virtio_serial:
        devices.append(hv.Channel.guest_agent())
    devices.append(hv.Input.tablet())
    devices.append(display)
    devices.append(hv.Video.new(platform.video))
    if qemu and variant.virtio_balloon:
        devices.append(hv.MemBalloon.virtio())
    if qemu and variant.virtio_rng:
        devices.append(hv.Rng.virtio())
    return devices
