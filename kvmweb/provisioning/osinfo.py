"""OS variants from osinfo-db (the Debian package's XML under /usr/share/osinfo), as virt-install uses them:
which device models a guest OS supports (virtio or not, USB 3, the q35 chipset) and its recommended memory and disk.

An OS's devices are its own plus those of the OSes it derives from or clones, minus the ones it marks
``supported="false"`` (libosinfo's ``osinfo_os_get_all_devices``). Only what the wizard needs is read, once per
process. 'generic' (unknown OS) gets conservative defaults.
"""
from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

OSINFO_DIR = Path(os.environ.get("KVMWEB_OSINFO_DIR", "/usr/share/osinfo"))
GENERIC = "generic"
_VIRTIO_BLOCK = {"http://pcisig.com/pci/1af4/1001", "http://pcisig.com/pci/1af4/1042"}
_VIRTIO_NET = {"http://pcisig.com/pci/1af4/1000", "http://pcisig.com/pci/1af4/1041"}
_VIRTIO1_NET = "http://pcisig.com/pci/1af4/1041"  # the sign of virtio 1.0 as a whole
_VIRTIO_SERIAL = {"http://pcisig.com/pci/1af4/1003", "http://pcisig.com/pci/1af4/1043"}
_VIRTIO_RNG = {"http://pcisig.com/pci/1af4/1005", "http://pcisig.com/pci/1af4/1044"}
_VIRTIO_BALLOON = {"http://pcisig.com/pci/1af4/1002", "http://pcisig.com/pci/1af4/1045"}
_VIRTIO_GPU = {"http://pcisig.com/pci/1af4/1050"}
_QEMU_XHCI = {"http://pcisig.com/pci/1b36/0004"}
_Q35 = {"http://qemu.org/chipset/x86/q35"}
# osinfo-db lacked virtio-serial for RHEL 6 and its relatives until 2018; virt-install still treats every OS related
# to it (derived, cloned or upgraded from it) as having the driver, and so do we.
_VIRTIO_SERIAL_KIN = "http://redhat.com/rhel/6.0"
MiB = 1024**2
GiB = 1024**3


@dataclass(frozen=True)
class OsVariant:
    short_id: str
    name: str
    family: str
    vendor: str
    virtio_block: bool
    virtio_net: bool
    recommended_memory_mib: int
    minimum_memory_mib: int
    recommended_disk_gib: int
    virtio_serial: bool = False  # the guest agent's channel needs it
    virtio_rng: bool = False
    virtio_balloon: bool = False
    virtio_gpu: bool = False
    usb3: bool = False  # a qemu-xhci driver; else the guest gets USB 2 (EHCI with UHCI companions)
    q35: bool = False  # the q35 chipset (and, when it has virtio, virtio 1.0): such guests get a q35 machine

    @property
    def disk_bus(self) -> str:
        """virtio when the OS has a driver for it, else SATA (what an old or unknown OS finds without drivers)."""
        return "virtio" if self.virtio_block else "sata"

    @property
    def nic_model(self) -> str:
        return "virtio" if self.virtio_net else "e1000"


GENERIC_VARIANT = OsVariant(
    short_id=GENERIC, name="Generic (unknown OS)", family="", vendor="", virtio_block=False, virtio_net=False,
    recommended_memory_mib=1024, minimum_memory_mib=16, recommended_disk_gib=10,
)


@dataclass
class _Raw:
    short_ids: list[str]
    name: str
    family: str
    vendor: str
    parents: list[str]  # derives-from, upgrades, clones
    device_parents: list[str]  # derives-from, clones: where devices are inherited from
    devices: set[str]
    unsupported: set[str]  # <device supported="false">: inherited, but not for this one
    ram_min: int | None
    ram_rec: int | None
    storage_rec: int | None


def _resources(os_el: ET.Element, kind: str, what: str) -> int | None:
    for res in os_el.findall("resources"):
        if res.get("arch") not in ("all", "x86_64"):
            continue
        value = res.findtext(f"{kind}/{what}")
        if value and value.strip().isdigit():
            return int(value)
    return None


def _parse(path: Path) -> tuple[str, _Raw] | None:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    os_el = root.find("os")
    if os_el is None or not os_el.get("id"):
        return None
    short_ids = [el.text.strip() for el in os_el.findall("short-id") if el.text]
    if not short_ids:
        return None
    parents = [el.get("id", "") for tag in ("derives-from", "upgrades", "clones") for el in os_el.findall(tag)]
    device_parents = [el.get("id", "") for tag in ("derives-from", "clones") for el in os_el.findall(tag)]
    devices = os_el.findall("devices/device")
    return os_el.get("id", ""), _Raw(
        short_ids=short_ids,
        name=(os_el.findtext("name") or short_ids[0]).strip(),
        family=(os_el.findtext("family") or "").strip(),
        vendor=(os_el.findtext("vendor") or "").strip(),
        parents=[p for p in parents if p],
        device_parents=[p for p in device_parents if p],
        devices={el.get("id", "") for el in devices if el.get("supported", "true") != "false"},
        unsupported={el.get("id", "") for el in devices if el.get("supported", "true") == "false"},
        ram_min=_resources(os_el, "minimum", "ram"),
        ram_rec=_resources(os_el, "recommended", "ram"),
        storage_rec=_resources(os_el, "recommended", "storage"),
    )


def _ids(value: object) -> set[str]:
    return {str(v) for v in value} if isinstance(value, set) else set()


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict[str, OsVariant]:
    raws: dict[str, _Raw] = {}
    for path in sorted((OSINFO_DIR / "os").glob("*/*.xml")):
        parsed = _parse(path)
        if parsed:
            raws[parsed[0]] = parsed[1]

    memo: dict[tuple[str, str], object] = {}

    def inherited(os_id: str, pick: str, seen: frozenset[str] = frozenset()) -> object:
        """``pick`` of ``os_id``, or the nearest ancestor's (devices: the union over the OSes it derives from or
        clones, less those it marks unsupported; kin: the set of itself and all its ancestors)."""
        key = (os_id, pick)
        if key in memo:
            return memo[key]
        raw = raws.get(os_id)
        if raw is None or os_id in seen:
            return None
        value: object = getattr(raw, pick, None)
        if pick == "devices":
            merged: set[str] = set()
            for parent in raw.device_parents:
                merged |= _ids(inherited(parent, pick, seen | {os_id}))
            value = (merged - raw.unsupported) | raw.devices
        elif pick == "kin":
            kin = {os_id}
            for parent in raw.parents:
                kin |= _ids(inherited(parent, pick, seen | {os_id}))
            value = kin
        elif value is None:
            for parent in raw.parents:
                value = inherited(parent, pick, seen | {os_id})
                if value is not None:
                    break
        memo[key] = value
        return value

    variants: dict[str, OsVariant] = {GENERIC: GENERIC_VARIANT}
    for os_id, raw in raws.items():
        devices = _ids(inherited(os_id, "devices"))
        kin = _ids(inherited(os_id, "kin"))
        virtio_net = bool(devices & _VIRTIO_NET)
        ram_rec = inherited(os_id, "ram_rec")
        ram_min = inherited(os_id, "ram_min")
        storage = inherited(os_id, "storage_rec")
        minimum = max(16, int(ram_min) // MiB) if isinstance(ram_min, int) else 16
        variant = OsVariant(
            short_id=raw.short_ids[0], name=raw.name, family=raw.family, vendor=raw.vendor,
            virtio_block=bool(devices & _VIRTIO_BLOCK), virtio_net=virtio_net,
            recommended_memory_mib=max(minimum, int(ram_rec) // MiB if isinstance(ram_rec, int) else 1024),
            minimum_memory_mib=minimum,
            recommended_disk_gib=max(1, int(storage) // GiB) if isinstance(storage, int) else 10,
            virtio_serial=bool(devices & _VIRTIO_SERIAL) or _VIRTIO_SERIAL_KIN in kin,
            virtio_rng=bool(devices & _VIRTIO_RNG), virtio_balloon=bool(devices & _VIRTIO_BALLOON),
            virtio_gpu=bool(devices & _VIRTIO_GPU), usb3=bool(devices & _QEMU_XHCI),
            # q35 where the OS knows the chipset and, if it has virtio at all, virtio 1.0 (which q35's PCIe needs)
            q35=bool(devices & _Q35) and (not virtio_net or _VIRTIO1_NET in devices),
        )
        for short_id in raw.short_ids:
            variants.setdefault(short_id, variant)
    return variants


def os_variant(short_id: str) -> OsVariant | None:
    """The variant with this short id (``debian11``, ``win10``, ``generic``...), or None when unknown."""
    return _catalogue().get((short_id or GENERIC).strip().lower())


def os_variants() -> list[OsVariant]:
    """Every variant once (by its first short id), generic first, then by name."""
    seen: dict[str, OsVariant] = {}
    for variant in _catalogue().values():
        seen.setdefault(variant.short_id, variant)
    rest = sorted((v for k, v in seen.items() if k != GENERIC), key=lambda v: v.name.lower())
    return [GENERIC_VARIANT, *rest]
