"""The one model of a domain's XML: :class:`DomainDocument`, with typed devices.

A document wraps the whole ``<domain>`` tree. Typed accessors read and edit what the portal understands — name,
UUID, memory, vCPUs, OS and boot order, sysinfo, metadata, and the devices (:class:`Disk`, :class:`Interface`,
:class:`Graphics`, :class:`Serial`, :class:`Console`, :class:`Channel`, :class:`Input`, :class:`Video`,
:class:`MemBalloon`, :class:`Rng`, :class:`Controller`) — and everything else in the tree is written back untouched: a VNC password,
a ``<qemu:commandline>``, a TPM, addresses, a namespace's metadata. The same classes build new domains
(:meth:`DomainDocument.new` + :meth:`DomainDocument.add_device`) and edit existing ones (read with
``Domain.definition()``, which asks libvirt for the ``INACTIVE | SECURE`` XML), and devices built here are what
attach/detach/update take.

:meth:`DomainDocument.clone_as` makes a clone's definition the way ``virt-clone`` does.
"""
from __future__ import annotations

import posixpath
import random
import re
import uuid as uuid_mod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from lxml import etree

from .errors import InvalidRequest
from .names import validate_name
from .units import KiB, MiB, xml_to_bytes
from .xmlnode import Attr, Element, Flag, IntAttr, IntText, Text, XmlNode, children, ensure

D = TypeVar("D", bound="Device")

DISK_BUSES = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}
CDROM_BUSES = ("sata", "scsi", "ide", "usb")
IDE_TARGETS = ("hda", "hdb", "hdc", "hdd")  # i440fx's one IDE controller: two buses of two units each
NIC_MODELS: tuple[str, ...] = ("virtio", "e1000", "rtl8139")
BOOT_DEVICES = ("cdrom", "hd", "network")
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


# ------------------------------------------------------------------------------------------------ values
KVMWEB_NS = "https://kvmweb.dev/xmlns/domain/1"  # the portal's own <metadata> elements


def normalize_mac(mac: str, *, what: str = "MAC address") -> str:
    """``52:54:00:AB:cd:01`` → ``52:54:00:ab:cd:01``; refuses malformed, multicast and all-zero addresses."""
    value = (mac or "").strip().lower().replace("-", ":")
    if not MAC_RE.fullmatch(value):
        raise InvalidRequest(f"Invalid {what} {mac!r}: write six pairs of hex digits, e.g. 52:54:00:12:34:56.")
    if int(value[:2], 16) & 1:
        raise InvalidRequest(f"Invalid {what} {mac!r}: it is a multicast address (odd first byte).")
    if value == "00:00:00:00:00:00":
        raise InvalidRequest(f"Invalid {what} {mac!r}: all zeros.")
    return value


def random_mac(rng: random.Random | None = None, *, taken: Iterable[str] = ()) -> str:
    """A MAC in QEMU/KVM's locally used range 52:54:00:xx:xx:xx (what libvirt itself picks), not in ``taken``."""
    r = rng or random.SystemRandom()
    used = {m.lower() for m in taken}
    while True:
        mac = "52:54:00:" + ":".join(f"{r.randrange(256):02x}" for _ in range(3))
        if mac not in used:
            return mac


def free_disk_target(bus: str, taken: Iterable[str]) -> str:
    """The first free device name for ``bus``: vda, vdb... for virtio; sda... for SATA/SCSI/USB; hda... for IDE."""
    if bus not in DISK_BUSES:
        raise InvalidRequest(f"Unknown disk bus {bus!r}: use one of {', '.join(DISK_BUSES)}.")
    prefix, used = DISK_BUSES[bus], set(taken)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for name in [prefix + a for a in letters] + [prefix + a + b for a in letters for b in letters]:
        if name not in used:
            return name
    raise InvalidRequest("No free device name left on this bus.")  # pragma: no cover


def clone_file_path(original_name: str, new_name: str, path: str) -> str:
    """Where a clone's copy of an auxiliary file goes (virt-clone's rule): ``/d/<original>.log`` →
    ``/d/<new>.log``; any other ``/d/foo.log`` → ``/d/foo-clone.log``."""
    stem, ext = path, ""
    if "." in posixpath.basename(path) and len(path.rsplit(".", 1)[1]) <= 7:
        stem, ext = path.rsplit(".", 1)
        ext = "." + ext
    folder, base = posixpath.split(stem)
    return posixpath.join(folder, (new_name if base == original_name else base + "-clone") + ext)


@dataclass(frozen=True)
class DiskInfo:
    """One disk or CD-ROM drive as the portal shows it (``virsh domblklist --details`` and more)."""

    target: str
    device: str  # disk, cdrom, floppy, lun
    bus: str
    type: str  # file, block, volume, network
    source: str | None  # a path (or pool/volume); None for an empty drive
    format: str | None
    readonly: bool  # a read-only disk (a CD-ROM is read-only anyway and does not count)
    shared_media: bool  # libvirt must not relabel the file (shared ISO media)
    boot_order: int | None

    @property
    def is_cdrom(self) -> bool:
        return self.device == "cdrom"

    @property
    def own_source(self) -> str | None:
        """The source of a writable disk — the VM's own data, which a clone, a template or a backup copies — else
        None (CD-ROMs, empty drives, read-only disks and shared media stay out)."""
        own = self.device == "disk" and not self.readonly and not self.shared_media
        return (self.source or None) if own else None


@dataclass(frozen=True)
class NicInfo:
    """One row of ``virsh domiflist`` plus link state and the addresses libvirt knows."""

    mac: str
    type: str  # network, bridge, user, ...
    source: str  # network name or bridge
    model: str
    target: str | None  # vnetN while running
    link_up: bool
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class VncDisplay:
    """Where the VNC display listens; ``listen='none'`` means only through libvirt (the portal's proxy)."""

    listen: str  # 'none', 'address', 'socket'
    address: str | None
    port: int | None

    @property
    def display(self) -> str | None:
        """``virsh vncdisplay`` output (``127.0.0.1:0``), or None when there is no TCP port."""
        if self.listen != "address" or self.port is None or self.port < 5900:
            return None
        return f"{self.address or ''}:{self.port - 5900}"


# ------------------------------------------------------------------------------------------------ devices
class Device(XmlNode):
    """A device element. This base class takes any device (sound, TPM, watchdog...) and keeps it as it is."""

    boot_order = IntAttr("boot", "order")
    alias = Attr("alias", "name")

    @classmethod
    def wrap(cls, element: Element) -> Device:
        """The most specific typed view for a device element."""
        return DEVICE_TYPES.get(str(element.tag), Device)(element)


class Disk(Device):
    TAG = "disk"
    kind = Attr("", "type")
    device = Attr("", "device")
    driver_name = Attr("driver", "name")
    format = Attr("driver", "type")
    target = Attr("target", "dev")
    bus = Attr("target", "bus")
    readonly = Flag("readonly")
    shareable = Flag("shareable")

    @classmethod
    def new(cls, *, target: str, device: str = "disk", bus: str = "virtio", source: str | None = None,
            format: str | None = "qcow2", readonly: bool = False, shared_media: bool = False,
            boot_order: int | None = None) -> Disk:
        """A file-backed disk or CD-ROM drive (``source=None``: an empty drive)."""
        if device not in ("disk", "cdrom"):
            raise InvalidRequest(f"Unknown disk device {device!r}: use disk or cdrom.")
        disk = cls(etree.Element("disk", type="file", device=device))
        ensure(disk.element, "driver").set("name", "qemu")
        disk.format = format
        disk.set_source(source, shared_media=shared_media)
        disk.target, disk.bus = target, bus
        disk.boot_order = boot_order
        disk.readonly = readonly or device == "cdrom"
        return disk

    @classmethod
    def destination(cls, path: str, format: str) -> Disk:
        """A bare ``<disk type='file'>`` naming a file and its format: where a block copy writes."""
        disk = cls(etree.Element("disk", type="file"))
        ensure(disk.element, "driver").set("name", "qemu")
        disk.format = format
        disk.set_source(path)
        return disk

    @property
    def is_cdrom(self) -> bool:
        return self.device == "cdrom"

    @property
    def source(self) -> str | None:
        """The file (or device, directory, ``pool/volume``, network name) the drive reads; None when empty."""
        src = self.element.find("source")
        if src is None:
            return None
        if src.get("pool") and src.get("volume"):
            return f"{src.get('pool')}/{src.get('volume')}"
        found = src.get("file") or src.get("dev") or src.get("dir") or src.get("volume") or src.get("name")
        return None if found is None else str(found)

    def set_source(self, path: str | None, *, shared_media: bool = False) -> None:
        """Point the drive at the file ``path`` (``type='file'``), or empty it (None). ``shared_media``: a
        read-only file many guests share, which libvirt must not relabel (chown) for one of them."""
        for old in self.element.findall("source") + self.element.findall("backingStore"):
            self.element.remove(old)
        if path is None:
            return
        self.kind = "file"
        source = etree.Element("source", file=path)
        if shared_media:
            etree.SubElement(source, "seclabel", model="dac", relabel="no")
        driver = self.element.find("driver")
        if driver is not None:
            driver.addnext(source)
        else:
            self.element.insert(0, source)

    @property
    def shared_media(self) -> bool:
        return self.element.find("source/seclabel[@model='dac'][@relabel='no']") is not None

    def info(self) -> DiskInfo:
        device = self.device or "disk"
        return DiskInfo(
            target=self.target or "", device=device, bus=self.bus or "", type=self.kind or "file",
            source=self.source, format=self.format, readonly=self.readonly and device != "cdrom",
            shared_media=self.shared_media, boot_order=self.boot_order,
        )


class Interface(Device):
    TAG = "interface"
    kind = Attr("", "type")
    mac = Attr("mac", "address")
    network = Attr("source", "network")
    bridge = Attr("source", "bridge")
    model = Attr("model", "type")
    target_dev = Attr("target", "dev")
    link_state = Attr("link", "state")

    @classmethod
    def new(cls, *, network: str, mac: str | None = None, model: str = "virtio", link_up: bool = True) -> Interface:
        """A NIC on a libvirt network (``mac=None``: libvirt picks one when the domain is defined)."""
        validate_name(network, what="network name")
        if model not in NIC_MODELS:
            raise InvalidRequest(f"Unknown NIC model {model!r}; use one of {', '.join(NIC_MODELS)}.")
        nic = cls(etree.Element("interface", type="network"))
        if mac is not None:
            nic.mac = normalize_mac(mac)
        nic.network = network
        nic.model = model
        if not link_up:
            nic.link_state = "down"
        return nic

    @property
    def source(self) -> str:
        src = self.element.find("source")
        if src is None:
            return ""
        return src.get("network") or src.get("bridge") or src.get("dev") or ""

    @property
    def link_up(self) -> bool:
        return (self.link_state or "up") != "down"

    @link_up.setter
    def link_up(self, value: bool) -> None:
        self.link_state = "up" if value else "down"

    def info(self, addresses: tuple[str, ...] = ()) -> NicInfo:
        return NicInfo(mac=(self.mac or "").lower(), type=self.kind or "", source=self.source,
                       model=self.model or "", target=self.target_dev, link_up=self.link_up, addresses=addresses)


class Graphics(Device):
    TAG = "graphics"
    kind = Attr("", "type")
    port = IntAttr("", "port")
    autoport = Attr("", "autoport")
    websocket = IntAttr("", "websocket")
    passwd = Attr("", "passwd")
    listen_type = Attr("listen", "type")
    listen_address = Attr("listen", "address")

    @classmethod
    def vnc(cls, *, listen: str = "none", address: str = "127.0.0.1", port: int | None = None) -> Graphics:
        """A VNC display. ``listen='none'`` opens no TCP port: the portal reaches it through libvirt."""
        gfx = cls(etree.Element("graphics", type="vnc"))
        if listen == "none":
            gfx.listen_type = "none"
            return gfx
        if port is None:
            gfx.autoport = "yes"
        else:
            gfx.port, gfx.autoport = port, "no"
        gfx.listen_type, gfx.listen_address = "address", address
        return gfx

    def display(self) -> VncDisplay:
        kind = self.listen_type or "address"
        address = self.listen_address or self.element.get("listen")
        port = self.port
        return VncDisplay(listen=kind, address=address, port=port if port is not None and port > 0 else None)


class _CharDevice(Device):
    kind = Attr("", "type")
    source_path = Attr("source", "path")
    source_mode = Attr("source", "mode")
    target_type = Attr("target", "type")
    target_port = IntAttr("target", "port")


class Serial(_CharDevice):
    TAG = "serial"

    @classmethod
    def pty(cls, port: int = 0) -> Serial:
        serial = cls(etree.Element("serial", type="pty"))
        serial.target_port = port
        return serial


class Console(_CharDevice):
    TAG = "console"

    @classmethod
    def pty(cls, port: int = 0) -> Console:
        """The console on the first serial port (what ``virsh console`` opens)."""
        console = cls(etree.Element("console", type="pty"))
        console.target_type, console.target_port = "serial", port
        return console


class Channel(_CharDevice):
    TAG = "channel"
    target_name = Attr("target", "name")

    @classmethod
    def guest_agent(cls) -> Channel:
        """The QEMU guest agent's virtio channel (libvirt picks the socket path)."""
        channel = cls(etree.Element("channel", type="unix"))
        channel.source_mode = "bind"
        channel.target_type, channel.target_name = "virtio", GUEST_AGENT_CHANNEL
        return channel


class Input(Device):
    TAG = "input"
    kind = Attr("", "type")
    bus = Attr("", "bus")

    @classmethod
    def tablet(cls) -> Input:
        """A USB tablet: an absolute pointer, so the console's mouse and the guest's agree."""
        return cls(etree.Element("input", type="tablet", bus="usb"))


class Video(Device):
    TAG = "video"
    model = Attr("model", "type")

    @classmethod
    def new(cls, model: str = "vga") -> Video:
        video = cls()
        video.model = model
        return video


class MemBalloon(Device):
    TAG = "memballoon"
    model = Attr("", "model")

    @classmethod
    def virtio(cls) -> MemBalloon:
        return cls(etree.Element("memballoon", model="virtio"))


class Rng(Device):
    TAG = "rng"
    model = Attr("", "model")
    backend_model = Attr("backend", "model")
    backend = Text("backend")

    @classmethod
    def virtio(cls, source: str = "/dev/urandom") -> Rng:
        rng = cls(etree.Element("rng", model="virtio"))
        rng.backend_model, rng.backend = "random", source
        return rng


class Controller(Device):
    """A controller (USB, PCI, SATA...). libvirt adds the ones a definition needs; these are the ones we name."""

    TAG = "controller"
    kind = Attr("", "type")
    index = IntAttr("", "index")
    model = Attr("", "model")
    ports = IntAttr("", "ports")
    master_startport = IntAttr("master", "startport")

    @classmethod
    def usb(cls, model: str, *, ports: int | None = None, master_startport: int | None = None) -> Controller:
        """A USB controller: ``qemu-xhci`` (USB 3), or ``ich9-ehci1`` with its UHCI companions (``ich9-uhci1``...,
        each naming the first EHCI port it serves)."""
        ctrl = cls(etree.Element("controller", type="usb", model=model))
        ctrl.ports = ports
        ctrl.master_startport = master_startport
        return ctrl

    @classmethod
    def scsi(cls, model: str = "virtio-scsi") -> Controller:
        """A SCSI controller (``virtio-scsi``): the bus for a CD-ROM a guest without AHCI (cloud kernels) can see."""
        return cls(etree.Element("controller", type="scsi", model=model))

    @classmethod
    def pci(cls, model: str) -> Controller:
        """A PCI controller: ``pcie-root`` (q35's root complex) or a ``pcie-root-port`` (one hot-pluggable slot)."""
        return cls(etree.Element("controller", type="pci", model=model))


DEVICE_TYPES: dict[str, type[Device]] = {
    cls.TAG: cls for cls in (Disk, Interface, Graphics, Serial, Console, Channel, Input, Video, MemBalloon, Rng,
                             Controller)
}


# ------------------------------------------------------------------------------------------------ the domain
class DomainDocument(XmlNode):
    """A whole ``<domain>`` definition, lossless: see the module's description."""

    TAG = "domain"
    domain_type = Attr("", "type")
    name = Text("name")
    uuid = Text("uuid")
    title = Text("title")
    description = Text("description")
    vcpus = IntText("vcpu")
    os_type = Text("os/type")
    arch = Attr("os/type", "arch")
    machine = Attr("os/type", "machine")
    nvram = Text("os/nvram")
    kernel = Text("os/kernel")
    initrd = Text("os/initrd")
    cmdline = Text("os/cmdline")
    sysinfo_uuid = Text("sysinfo[@type='smbios']/system/entry[@name='uuid']")
    cpu_mode = Attr("cpu", "mode")  # host-passthrough, host-model, custom, maximum (None: the default model)

    SCHEMA_ORDER: ClassVar[tuple[str, ...]] = ("name", "uuid", "title", "description", "metadata", "memory",
                                              "currentMemory", "vcpu", "os", "features")

    # -- building -------------------------------------------------------------------------------------
    @classmethod
    def new(cls, *, name: str, memory_kib: int, vcpus: int = 1, domain_type: str = "kvm", uuid: str | None = None,
            arch: str = "x86_64", machine: str | None = None, os_type: str = "hvm", boot: Iterable[str] = ("hd",),
            features: Iterable[str] = ("acpi", "apic"), description: str = "") -> DomainDocument:
        """A new domain with no devices yet: add them with :meth:`add_device`. ``boot`` is the ``<os><boot>``
        order, dropped when a device carries its own boot order."""
        doc = cls(etree.Element("domain", type=domain_type))
        doc.name = name
        if uuid:
            doc.uuid = uuid
        if description:
            doc.description = description
        doc.memory_kib = memory_kib
        doc.current_memory_kib = memory_kib
        doc.vcpus = vcpus
        ensure(doc.element, "vcpu").set("placement", "static")
        doc.os_type = os_type
        doc.arch = arch
        if machine:
            doc.machine = machine
        os_el = ensure(doc.element, "os")
        for dev in boot:
            etree.SubElement(os_el, "boot", dev=dev)
        feats = list(features)
        if feats:
            holder = etree.SubElement(doc.element, "features")
            for feat in feats:
                etree.SubElement(holder, feat)
        for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
            etree.SubElement(doc.element, event).text = action
        etree.SubElement(doc.element, "devices")
        return doc

    def validate(self) -> None:
        """What must hold before a definition goes to libvirt (libvirt checks the rest)."""
        validate_name(self.name or "")
        if self.memory_kib < KiB:
            raise InvalidRequest("Memory must be at least 1 MiB.")
        if not 1 <= (self.vcpus or 0) <= 4096:
            raise InvalidRequest("vCPUs must be between 1 and 4096.")
        if self.uuid:
            try:
                uuid_mod.UUID(self.uuid)
            except ValueError:
                raise InvalidRequest(f"Invalid UUID {self.uuid!r}.") from None
        targets = [d.target for d in self.disks]
        if len(set(targets)) != len(targets):
            raise InvalidRequest("Two disks use the same target device.")

    # -- memory ---------------------------------------------------------------------------------------
    def _kib(self, tag: str) -> int:
        el = self.element.find(tag)
        if el is None:
            return 0
        return xml_to_bytes(el.text, el.get("unit"), default_unit="KiB") // KiB

    def _set_kib(self, tag: str, value: int) -> None:
        el = ensure(self.element, tag)
        el.set("unit", "KiB")
        el.text = str(int(value))

    @property
    def memory_kib(self) -> int:
        """The maximum memory (``<memory>``), in KiB whatever unit the XML uses."""
        return self._kib("memory")

    @memory_kib.setter
    def memory_kib(self, value: int) -> None:
        self._set_kib("memory", value)

    @property
    def current_memory_kib(self) -> int:
        return self._kib("currentMemory") or self.memory_kib

    @current_memory_kib.setter
    def current_memory_kib(self, value: int) -> None:
        self._set_kib("currentMemory", value)

    @property
    def memory_mib(self) -> int:
        return self.memory_kib * KiB // MiB

    @property
    def features(self) -> tuple[str, ...]:
        feats = self.element.find("features")
        return tuple(str(f.tag) for f in feats if isinstance(f.tag, str)) if feats is not None else ()

    # -- metadata -------------------------------------------------------------------------------------
    def metadata(self, namespace: str, tag: str) -> Element | None:
        """Our own metadata element ``{namespace}tag`` inside ``<metadata>``, if there is one."""
        return self.element.find(f"metadata/{{{namespace}}}{tag}")

    def set_metadata(self, namespace: str, prefix: str, tag: str) -> Element:
        """The (emptied) metadata element ``{namespace}tag``, created when missing; fill it with sub-elements.
        Other applications' metadata is left as it is."""
        found = self.metadata(namespace, tag)
        if found is not None:
            for child in list(found):
                found.remove(child)
            found.text = None
            return found
        holder = ensure(self.element, "metadata")
        return etree.SubElement(holder, f"{{{namespace}}}{tag}", nsmap={prefix: namespace})

    @property
    def seed_path(self) -> str | None:
        """The path of the cloud-init seed volume the portal made for this domain (``<kvmweb:seed path=...>`` in
        its metadata): it goes when the domain is deleted."""
        found = self.metadata(KVMWEB_NS, "seed")
        return found.get("path") if found is not None else None

    @seed_path.setter
    def seed_path(self, path: str | None) -> None:
        if path is None:
            found = self.metadata(KVMWEB_NS, "seed")
            if found is not None:
                found.getparent().remove(found)
            return
        self.set_metadata(KVMWEB_NS, "kvmweb", "seed").set("path", path)

    # -- devices --------------------------------------------------------------------------------------
    @property
    def _devices(self) -> Element | None:
        return self.element.find("devices")

    def devices(self) -> list[Device]:
        """Every device, each as its most specific typed view, in document order."""
        holder = self._devices
        return [] if holder is None else [Device.wrap(el) for el in holder if isinstance(el.tag, str)]

    def devices_of(self, kind: type[D]) -> list[D]:
        return children(self._devices, kind.TAG, kind)

    @property
    def disks(self) -> list[Disk]:
        return self.devices_of(Disk)

    @property
    def interfaces(self) -> list[Interface]:
        return self.devices_of(Interface)

    @property
    def graphics(self) -> list[Graphics]:
        return self.devices_of(Graphics)

    @property
    def serials(self) -> list[Serial]:
        return self.devices_of(Serial)

    @property
    def consoles(self) -> list[Console]:
        return self.devices_of(Console)

    @property
    def channels(self) -> list[Channel]:
        return self.devices_of(Channel)

    def disk(self, target: str) -> Disk | None:
        return next((d for d in self.disks if d.target == target), None)

    def interface(self, mac: str) -> Interface | None:
        wanted = normalize_mac(mac)
        return next((n for n in self.interfaces if (n.mac or "").lower() == wanted), None)

    def add_device(self, device: D) -> D:
        """Add ``device`` after the last device of its kind (or at the end); libvirt assigns its address and any
        controller it needs when the definition is saved."""
        holder = ensure(self.element, "devices")
        same = holder.findall(device.tag)
        if same:
            same[-1].addnext(device.element)
        else:
            holder.append(device.element)
        return device

    def remove_device(self, device: Device) -> None:
        holder = self._devices
        if holder is None or device.element.getparent() is not holder:
            raise InvalidRequest("That device is not part of this definition.")
        holder.remove(device.element)

    @property
    def has_serial_console(self) -> bool:
        return bool(self.consoles)

    def vnc_display(self) -> VncDisplay | None:
        gfx = next((g for g in self.graphics if g.kind == "vnc"), None)
        return None if gfx is None else gfx.display()

    # -- disks and boot order -------------------------------------------------------------------------
    @property
    def lacks_ide(self) -> bool:
        """q35 has no IDE controller: libvirt accepts an IDE drive in the definition, but the guest then fails to
        start ("IDE controllers are unsupported for this QEMU binary or machine type")."""
        return "q35" in (self.machine or "").lower()

    @property
    def default_cdrom_bus(self) -> str:
        """The bus ``virt-install`` gives a new CD-ROM drive: SATA on q35, IDE on i440fx (``pc``) and on x86 when
        no machine is named, SCSI on other architectures."""
        if self.lacks_ide:
            return "sata"
        return "ide" if (self.arch or "x86_64") in ("x86_64", "i686") else "scsi"

    def move_disk(self, target: str, bus: str, *, also_taken: Iterable[str] = ()) -> str:
        """Move the disk ``target`` to ``bus``: it gets a device name of that bus (its own when it already fits)
        and loses its address (libvirt assigns a new one and adds any controller it needs). Returns the new name."""
        disk = self.disk(target)
        if disk is None:
            raise InvalidRequest(f"This VM has no disk {target}.")
        if disk.is_cdrom and bus not in CDROM_BUSES:
            raise InvalidRequest(f"A CD-ROM drive cannot sit on the {bus} bus: use {', '.join(CDROM_BUSES)}.")
        taken = [d.target or "" for d in self.disks if d is not disk and d.target != target] + list(also_taken)
        fits = target[:2] == DISK_BUSES.get(bus, "")[:2] and target not in taken
        new = target if fits else free_disk_target(bus, taken)
        disk.target, disk.bus = new, bus
        for address in disk.element.findall("address"):
            disk.element.remove(address)
        return new

    @property
    def boot_order(self) -> list[str]:
        """The boot order the definition says: ``<os><boot dev>`` entries, or the devices' ``<boot order>``."""
        devs = [b.get("dev", "") for b in self.element.findall("os/boot")]
        if devs:
            return devs
        ordered: list[tuple[int, str]] = []
        for dev in self.devices():
            if dev.boot_order is None:
                continue
            kind = "network" if dev.tag == "interface" else ("cdrom" if dev.element.get("device") == "cdrom"
                                                              else "hd")
            ordered.append((dev.boot_order, kind))
        result: list[str] = []
        for _, kind in sorted(ordered):
            if kind not in result:
                result.append(kind)
        return result

    def set_boot_order(self, order: Iterable[str]) -> None:
        """Boot from these devices (``cdrom``, ``hd``, ``network``) in this order; per-device ``<boot order>``
        elements go so the ``<os><boot dev>`` list decides."""
        devs = list(order)
        for dev in devs:
            if dev not in BOOT_DEVICES:
                raise InvalidRequest(f"Unknown boot device {dev!r}: use cdrom, hd or network.")
        if not devs or len(set(devs)) != len(devs):
            raise InvalidRequest("List each boot device at most once, and at least one.")
        os_el = self.element.find("os")
        if os_el is None:
            raise InvalidRequest("This domain has no <os> section to set a boot order in.")
        for boot in list(self.element.iter("boot")):
            boot.getparent().remove(boot)
        position = next((i + 1 for i, el in enumerate(os_el) if el.tag in ("type", "loader", "nvram")), 1)
        for offset, dev in enumerate(devs):
            os_el.insert(position + offset, etree.Element("boot", dev=dev))

    # -- cloning --------------------------------------------------------------------------------------
    def clone_as(self, *, name: str, uuid: str, disk_sources: Mapping[str, str],
                 disk_formats: Mapping[str, str] | None = None, taken_macs: Iterable[str] = ()) -> DomainDocument:
        """The definition of a clone (``virt-clone`` parity), as a new document; this one stays as it is.

        New name and UUID (the SMBIOS system UUID follows it, or libvirt refuses the mismatch); the title and the
        runtime id go; fixed VNC/websocket ports become automatic; each NIC gets a new MAC (not in ``taken_macs``)
        and loses its host-side device name; a UNIX channel's socket path that names the channel goes (libvirt
        makes one under the new name); file-backed serial/console logs and the NVRAM file get the clone's own
        paths; each disk whose target is in ``disk_sources`` points at its new file (``disk_formats``: the new
        file's format); the portal's claim on a cloud-init seed (``seed_path``) goes. A graphics password and
        everything else is kept."""
        validate_name(name)
        original = self.name or ""
        clone = self.copy()
        clone.element.attrib.pop("id", None)
        clone.title = None
        clone.name = name
        clone.uuid = uuid
        if clone.sysinfo_uuid is not None:
            clone.sysinfo_uuid = uuid
        for gfx in clone.graphics:
            if gfx.port is not None and gfx.port != -1:
                gfx.port, gfx.autoport = -1, "yes"
            if gfx.websocket is not None and gfx.websocket != -1:
                gfx.websocket = -1
        taken = set(taken_macs)
        for nic in clone.interfaces:
            nic.target_dev = None
            nic.mac = random_mac(taken=taken)
            taken.add(nic.mac)
        for channel in clone.channels:
            path, target = channel.source_path, channel.target_name
            if channel.kind == "unix" and path and target and target in path:
                channel.source_path = None
        for char in [*clone.serials, *clone.consoles]:
            if char.kind == "file" and char.source_path:
                char.source_path = clone_file_path(original, name, char.source_path)
        if clone.nvram:
            folder, base = posixpath.split(clone.nvram)
            ext = posixpath.splitext(base)[1] or ".fd"
            clone.nvram = posixpath.join(folder, f"{name}_VARS{ext}")
        formats = disk_formats or {}
        for disk in clone.disks:
            target = disk.target or ""
            if target in disk_sources:
                disk.set_source(disk_sources[target])
                if target in formats:
                    disk.format = formats[target]
        clone.seed_path = None  # the cloud-init seed stays the original's: deleting the clone must not delete it
        return clone


__all__ = [
    "BOOT_DEVICES", "CDROM_BUSES", "Channel", "Console", "DEVICE_TYPES", "DISK_BUSES", "Device", "Disk", "DiskInfo",
    "DomainDocument", "GUEST_AGENT_CHANNEL", "Graphics", "IDE_TARGETS", "Input", "Interface", "MemBalloon",
    "NIC_MODELS", "NicInfo", "Rng", "Serial", "VncDisplay", "Video", "clone_file_path",
    "free_disk_target", "normalize_mac", "random_mac",
]
