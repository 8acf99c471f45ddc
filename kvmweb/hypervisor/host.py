"""What a host offers: its capabilities, read once when a host is registered or probed; the host page's details."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, OperationFailed
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
    return _facts(conn, parse_element(conn.call(lambda c: c.getCapabilities())))


def _facts(conn: Connection, caps: Any) -> HostFacts:
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


@dataclass(frozen=True)
class NumaCell:
    id: int
    memory_kib: int
    free_kib: int | None  # None: the driver does not tell
    cpus: int


@dataclass(frozen=True)
class HostDetails:
    """What the host page shows (``virsh capabilities``, ``nodeinfo``, ``freecell``, ``version``)."""

    facts: HostFacts
    cpu_model: str
    cpu_vendor: str
    sockets: int
    cores: int  # per socket
    threads: int  # per core
    cells: tuple[NumaCell, ...]
    free_memory_kib: int | None
    hypervisor_version: str

    @property
    def accel(self) -> str:
        """"KVM" when the host offers hardware virtualization, else "TCG" (QEMU's emulation)."""
        return "KVM" if "kvm" in self.facts.domain_types else "TCG"


def host_details(conn: Connection) -> HostDetails:
    """The host's CPU, NUMA cells, free memory and versions: six calls plus one per driver that tells free memory."""
    caps = parse_element(conn.call(lambda c: c.getCapabilities()))
    facts = _facts(conn, caps)
    cpu = caps.find("host/cpu")
    topology = cpu.find("topology") if cpu is not None else None
    _model, _mem, _cpus, _mhz, _nodes, sockets, cores, threads = conn.call(lambda c: c.getInfo())
    if topology is not None:
        sockets, cores, threads = (int(topology.get(k, v)) for k, v in
                                   (("sockets", sockets), ("cores", cores), ("threads", threads)))
    cells_xml = caps.findall("host/topology/cells/cell")
    try:
        free_cells: list[int] | None = list(conn.call(lambda c: c.getCellsFreeMemory(0, max(len(cells_xml), 1))))
        free_total: int | None = int(conn.call(lambda c: c.getFreeMemory())) // 1024
    except (InvalidRequest, OperationFailed):  # a driver that does not tell
        free_cells, free_total = None, None
    cells = []
    for index, cell in enumerate(cells_xml):
        memory = cell.find("memory")
        cpus = cell.find("cpus")
        cells.append(NumaCell(
            id=int(cell.get("id", index)),
            memory_kib=int(memory.text or 0) if memory is not None else 0,
            free_kib=free_cells[index] // 1024 if free_cells is not None and index < len(free_cells) else None,
            cpus=int(cpus.get("num", 0)) if cpus is not None else 0))
    try:
        version = host_hypervisor_version(conn)
    except InvalidRequest:
        version = ""
    return HostDetails(
        facts=facts, cpu_model=(cpu.findtext("model") or "") if cpu is not None else "",
        cpu_vendor=(cpu.findtext("vendor") or "") if cpu is not None else "",
        sockets=sockets, cores=cores, threads=threads, cells=tuple(cells), free_memory_kib=free_total,
        hypervisor_version=version)
