"""What a host offers: its capabilities, read once when a host is registered or probed."""
from __future__ import annotations


from dataclasses import dataclass

from .errors import InvalidRequest
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
    machines: tuple[str, ...] = ()  # machine types for the native arch, aliases too ('pc', 'q35', 'pc-q35-7.2'...)

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
    machines: list[str] = []
    for guest in caps.findall("guest"):
        guest_arch = guest.find("arch")
        if guest_arch is None or guest_arch.get("name") != arch or guest.findtext("os_type") != "hvm":
            continue
        for dom in guest_arch.findall("domain"):
            kind = dom.get("type", "")
            if kind and kind not in types:
                types.append(kind)
        for machine in guest_arch.iter("machine"):
            name = (machine.text or "").strip()
            if name and name not in machines:
                machines.append(name)
    _model, memory_mib, cpus, *_rest = conn.call(lambda c: c.getInfo())
    return HostFacts(
        hostname=conn.call(lambda c: c.getHostname()),
        arch=arch,
        cpus=cpus,
        memory_kib=memory_mib * 1024,
        domain_types=tuple(types),
        libvirt_version=_version(conn.call(lambda c: c.getLibVersion())),
        hypervisor=conn.call(lambda c: c.getType()),
        machines=tuple(machines),
    )


def host_hypervisor_version(conn: Connection) -> str:
    """The hypervisor's version (``virsh version``: "Running hypervisor: QEMU 7.2.0" → ``"7.2.0"``); ``""`` when the
    driver does not tell. One call."""
    number = int(conn.call(lambda c: c.getVersion()) or 0)
    return _version(number) if number else ""


def host_video_models(conn: Connection, *, domain_type: str, arch: str, machine: str | None = None) -> tuple[str, ...]:
    """The video models a guest of this type, arch and machine can have (``virsh domcapabilities``); empty when
    the driver cannot tell (the test driver)."""
    try:
        xml = conn.call(lambda c: c.getDomainCapabilities(None, arch or None, machine, domain_type or None, 0))
    except InvalidRequest:  # VIR_ERR_NO_SUPPORT
        return ()
    caps = parse_element(xml)
    video = caps.find("devices/video")
    if video is None or video.get("supported") != "yes":
        return ()
    return tuple((v.text or "").strip() for v in video.findall("enum[@name='modelType']/value") if v.text)
