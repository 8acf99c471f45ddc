"""Typed descriptions of domains that turn into libvirt XML and parse back from it.

User strings only ever become attribute values or text through ElementTree, never pasted into markup.
"""
from __future__ import annotations

import uuid as uuid_mod
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidRequest
from .names import validate_name

DiskDevice = Literal["disk", "cdrom"]


@dataclass(frozen=True)
class DiskSpec:
    target: str  # vda, sda, hdc...
    device: DiskDevice = "disk"
    bus: str = "virtio"
    source: str | None = None  # a file path; None for an empty CD-ROM drive
    format: str | None = "qcow2"
    readonly: bool = False
    shared_media: bool = False  # read-only media shared by many guests: libvirt must not chown it
    boot_order: int | None = None


@dataclass(frozen=True)
class InterfaceSpec:
    network: str
    mac: str | None = None
    model: str = "virtio"


@dataclass(frozen=True)
class GraphicsSpec:
    """A VNC display. ``listen='none'`` opens no TCP port: the portal reaches it through libvirt."""

    listen: Literal["none", "address"] = "none"
    address: str = "127.0.0.1"
    port: int | None = None  # None = autoport (only meaningful with listen='address')


@dataclass(frozen=True)
class DomainSpec:
    name: str
    memory_kib: int
    vcpus: int = 1
    domain_type: str = "kvm"
    uuid: str | None = None
    arch: str = "x86_64"
    machine: str | None = None
    os_type: str = "hvm"
    boot: tuple[str, ...] = ("hd",)  # used when no device carries its own boot order
    disks: tuple[DiskSpec, ...] = ()
    interfaces: tuple[InterfaceSpec, ...] = ()
    graphics: tuple[GraphicsSpec, ...] = ()
    serial_console: bool = False
    description: str = ""
    features: tuple[str, ...] = ("acpi", "apic")

    def validate(self) -> None:
        validate_name(self.name)
        if self.memory_kib < 1024:
            raise InvalidRequest("Memory must be at least 1 MiB.")
        if not 1 <= self.vcpus <= 4096:
            raise InvalidRequest("vCPUs must be between 1 and 4096.")
        if self.uuid is not None:
            uuid_mod.UUID(self.uuid)
        targets = [d.target for d in self.disks]
        if len(set(targets)) != len(targets):
            raise InvalidRequest("Two disks use the same target device.")

    # -- rendering ------------------------------------------------------------------------------------
    def to_xml(self) -> str:
        self.validate()
        root = ET.Element("domain", type=self.domain_type)
        ET.SubElement(root, "name").text = self.name
        if self.uuid:
            ET.SubElement(root, "uuid").text = self.uuid
        if self.description:
            ET.SubElement(root, "description").text = self.description
        ET.SubElement(root, "memory", unit="KiB").text = str(self.memory_kib)
        ET.SubElement(root, "currentMemory", unit="KiB").text = str(self.memory_kib)
        ET.SubElement(root, "vcpu", placement="static").text = str(self.vcpus)
        os_el = ET.SubElement(root, "os")
        type_attrs = {"arch": self.arch}
        if self.machine:
            type_attrs["machine"] = self.machine
        ET.SubElement(os_el, "type", type_attrs).text = self.os_type
        if not any(d.boot_order for d in self.disks):
            for dev in self.boot:
                ET.SubElement(os_el, "boot", dev=dev)
        if self.features:
            feats = ET.SubElement(root, "features")
            for feat in self.features:
                ET.SubElement(feats, feat)
        ET.SubElement(root, "on_poweroff").text = "destroy"
        ET.SubElement(root, "on_reboot").text = "restart"
        ET.SubElement(root, "on_crash").text = "destroy"
        devices = ET.SubElement(root, "devices")
        for disk in self.disks:
            _render_disk(devices, disk)
        for nic in self.interfaces:
            iface = ET.SubElement(devices, "interface", type="network")
            if nic.mac:
                ET.SubElement(iface, "mac", address=nic.mac)
            ET.SubElement(iface, "source", network=nic.network)
            ET.SubElement(iface, "model", type=nic.model)
        if self.serial_console:
            serial = ET.SubElement(devices, "serial", type="pty")
            ET.SubElement(serial, "target", port="0")
            console = ET.SubElement(devices, "console", type="pty")
            ET.SubElement(console, "target", type="serial", port="0")
        for gfx in self.graphics:
            if gfx.listen == "none":
                g = ET.SubElement(devices, "graphics", type="vnc")
                ET.SubElement(g, "listen", type="none")
            else:
                attrs = {"type": "vnc"}
                if gfx.port is None:
                    attrs["autoport"] = "yes"
                else:
                    attrs.update(port=str(gfx.port), autoport="no")
                g = ET.SubElement(devices, "graphics", attrs)
                ET.SubElement(g, "listen", type="address", address=gfx.address)
        if self.graphics:
            video = ET.SubElement(devices, "video")
            ET.SubElement(video, "model", type="vga")
        ET.indent(root)
        return ET.tostring(root, encoding="unicode")

    # -- parsing --------------------------------------------------------------------------------------
    @classmethod
    def from_xml(cls, xml: str) -> DomainSpec:
        root = ET.fromstring(xml)
        memory = root.find("memory")
        os_type = root.find("os/type")
        disks = tuple(_parse_disk(el) for el in root.findall("devices/disk"))
        interfaces = tuple(
            InterfaceSpec(
                network=_attr(el, "source", "network") or "",
                mac=_attr(el, "mac", "address"),
                model=_attr(el, "model", "type") or "",
            )
            for el in root.findall("devices/interface")
        )
        graphics = tuple(_parse_graphics(el) for el in root.findall("devices/graphics") if el.get("type") == "vnc")
        feats = root.find("features")
        return cls(
            name=_text(root, "name"),
            uuid=_text(root, "uuid") or None,
            description=_text(root, "description"),
            memory_kib=_kib(memory),
            vcpus=int(_text(root, "vcpu") or 1),
            domain_type=root.get("type", "kvm"),
            arch=os_type.get("arch", "x86_64") if os_type is not None else "x86_64",
            machine=os_type.get("machine") if os_type is not None else None,
            os_type=(os_type.text or "hvm") if os_type is not None else "hvm",
            boot=tuple(b.get("dev", "") for b in root.findall("os/boot")) or ("hd",),
            disks=disks,
            interfaces=interfaces,
            graphics=graphics,
            serial_console=root.find("devices/console") is not None,
            features=tuple(f.tag for f in feats) if feats is not None else (),
        )


_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
          "g": 1024**3, "gib": 1024**3, "gb": 1000**3, "t": 1024**4, "tib": 1024**4, "tb": 1000**4}


def _kib(el: ET.Element | None) -> int:
    if el is None or not (el.text or "").strip():
        return 0
    factor = _UNITS.get(el.get("unit", "KiB").lower(), 1024)
    return int(el.text or 0) * factor // 1024


def _text(root: ET.Element, path: str) -> str:
    el = root.find(path)
    return (el.text or "").strip() if el is not None else ""


def _attr(root: ET.Element, path: str, name: str) -> str | None:
    el = root.find(path)
    return el.get(name) if el is not None else None


def _render_disk(devices: ET.Element, disk: DiskSpec) -> None:
    el = ET.SubElement(devices, "disk", type="file", device=disk.device)
    driver = {"name": "qemu"}
    if disk.format:
        driver["type"] = disk.format
    ET.SubElement(el, "driver", driver)
    if disk.source:
        src = ET.SubElement(el, "source", file=disk.source)
        if disk.shared_media:
            ET.SubElement(src, "seclabel", model="dac", relabel="no")
    ET.SubElement(el, "target", dev=disk.target, bus=disk.bus)
    if disk.boot_order:
        ET.SubElement(el, "boot", order=str(disk.boot_order))
    if disk.readonly or disk.device == "cdrom":
        ET.SubElement(el, "readonly")


def _parse_disk(el: ET.Element) -> DiskSpec:
    src = el.find("source")
    source = None
    shared = False
    if src is not None:
        source = src.get("file") or src.get("dev") or src.get("volume") or src.get("name")
        label = src.find("seclabel")
        shared = label is not None and label.get("relabel") == "no"
    target = el.find("target")
    boot = el.find("boot")
    device = el.get("device", "disk")
    return DiskSpec(
        target=target.get("dev", "") if target is not None else "",
        device="cdrom" if device == "cdrom" else "disk",
        bus=target.get("bus", "") if target is not None else "",
        source=source,
        format=_attr(el, "driver", "type"),
        readonly=el.find("readonly") is not None and device != "cdrom",  # a CD-ROM is read-only anyway
        shared_media=shared,
        boot_order=int(boot.get("order", "0")) if boot is not None else None,
    )


def _parse_graphics(el: ET.Element) -> GraphicsSpec:
    listen = el.find("listen")
    if listen is not None and listen.get("type") == "none":
        return GraphicsSpec(listen="none")
    address = (listen.get("address") if listen is not None else None) or el.get("listen") or "127.0.0.1"
    port = el.get("port")
    autoport = el.get("autoport") == "yes"
    return GraphicsSpec(listen="address", address=address, port=None if autoport or not port else int(port))
