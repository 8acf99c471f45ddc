"""What a host offers: its capabilities, read once when a host is registered or probed."""
from __future__ import annotations


from dataclasses import dataclass

from .registry import Connection
from .xmlnode import parse_element


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    arch: str
    cpus: int
    memory_kib: int
    domain_types: tuple[str, ...]  # what the host can run for its native arch, e.g. ('qemu', 'kvm')
    libvirt_version: str
    hypervisor: str

    @property
    def preferred_domain_type(self) -> str:
        """``kvm`` where the host offers it, else ``qemu`` (pure emulation, TCG)."""
        return "kvm" if "kvm" in self.domain_types else "qemu"


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def host_facts(conn: Connection) -> HostFacts:
    caps = parse_element(conn.call(lambda c: c.getCapabilities()))
    arch = caps.findtext("host/cpu/arch", default="")
    types: list[str] = []
    for guest in caps.findall("guest"):
        guest_arch = guest.find("arch")
        if guest_arch is None or guest_arch.get("name") != arch:
            continue
        for dom in guest_arch.findall("domain"):
            kind = dom.get("type", "")
            if kind and kind not in types:
                types.append(kind)
    _model, memory_mib, cpus, *_rest = conn.call(lambda c: c.getInfo())
    return HostFacts(
        hostname=conn.call(lambda c: c.getHostname()),
        arch=arch,
        cpus=cpus,
        memory_kib=memory_mib * 1024,
        domain_types=tuple(types),
        libvirt_version=_version(conn.call(lambda c: c.getLibVersion())),
        hypervisor=conn.call(lambda c: c.getType()),
    )
