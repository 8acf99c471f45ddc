"""What the guest itself says about it: its OS, host name, addresses and file systems, read through the QEMU guest
agent (``virDomainGetGuestInfo``, ``virDomainInterfaceAddresses`` from the agent), with the DHCP leases of libvirt's
networks as the fallback for addresses when the agent does not answer.

:func:`guest_info` never raises for an absent agent: the guest may not run one, the VM may have no agent channel
or may not be running. It answers ``agent=False`` and says why in ``error``. It waits at most ``timeout_s`` for an
agent that is connected but does not answer (``virDomainAgentSetResponseTimeout``). The parsing of libvirt's
answers is pure (:func:`parse_guest_info`, :func:`parse_interfaces`) so it is tested on recorded answers.

libvirt's own error printing is silenced by :mod:`.registry`, so a missing agent does not spam stderr.
"""
from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import libvirt

from .domain import Domain, DomainState
from .errors import HostUnavailable, HypervisorError, NotFound

log = logging.getLogger(__name__)

Source = Literal["agent", "lease"]

# What the VM page asks the agent (the OS, the host name, the mounted file systems): one agent round trip each.
GUEST_INFO_TYPES = (
    libvirt.VIR_DOMAIN_GUEST_INFO_OS | libvirt.VIR_DOMAIN_GUEST_INFO_HOSTNAME | libvirt.VIR_DOMAIN_GUEST_INFO_FILESYSTEM
)


@dataclass(frozen=True)
class GuestInterface:
    """One network interface: ``name`` is the guest's own (``enp1s0``) for the agent, the host's tap device
    (``vnet3``) for a lease; ``addresses`` are ``address/prefix`` strings, IPv4 first."""

    name: str
    mac: str
    addresses: tuple[str, ...]
    source: Source


@dataclass(frozen=True)
class GuestFilesystem:
    mountpoint: str
    type: str
    used_bytes: int | None  # None: the agent did not report the usage (older agents, some file systems)
    total_bytes: int | None
    device: str = ""  # the guest's device name (``vda1``)

    @property
    def used_pct(self) -> float | None:
        if self.used_bytes is None or not self.total_bytes:
            return None
        return 100.0 * self.used_bytes / self.total_bytes


@dataclass(frozen=True)
class GuestInfo:
    """What is known about the guest. ``agent``: the guest agent answered (the OS, host name and file systems come
    from it); otherwise ``error`` says in words why not, and the interfaces come from the DHCP leases of libvirt's
    networks (if any)."""

    agent: bool
    os_name: str = ""  # "Debian GNU/Linux 12 (bookworm)" (the pretty name) or the OS's name
    os_id: str = ""  # "debian"
    os_version: str = ""  # "12 (bookworm)"
    kernel: str = ""  # "6.1.0-13-amd64"
    machine: str = ""  # "x86_64"
    hostname: str = ""
    interfaces: tuple[GuestInterface, ...] = ()
    filesystems: tuple[GuestFilesystem, ...] = ()
    error: str = ""
    running: bool = True
    agent_asked: bool = True  # False: the VM's state made asking pointless (shut off, paused)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address of every interface, without prefixes, in order."""
        return tuple(a.split("/", 1)[0] for nic in self.interfaces for a in nic.addresses)


# ------------------------------------------------------------------------------------------------ parsing (pure)
def _text(info: Mapping[str, Any], key: str) -> str:
    value = info.get(key)
    return str(value).strip() if value is not None else ""


def _int(info: Mapping[str, Any], key: str) -> int | None:
    value = info.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_filesystems(info: Mapping[str, Any]) -> tuple[GuestFilesystem, ...]:
    """The ``fs.count`` / ``fs.<n>.*`` keys of a guestInfo answer, sorted by mount point."""
    found = []
    for n in range(_int(info, "fs.count") or 0):
        mountpoint = _text(info, f"fs.{n}.mountpoint")
        if not mountpoint:
            continue
        found.append(GuestFilesystem(
            mountpoint=mountpoint, type=_text(info, f"fs.{n}.fstype"), used_bytes=_int(info, f"fs.{n}.used-bytes"),
            total_bytes=_int(info, f"fs.{n}.total-bytes"), device=_text(info, f"fs.{n}.name"),
        ))
    return tuple(sorted(found, key=lambda fs: fs.mountpoint))


def parse_guest_info(info: Mapping[str, Any]) -> GuestInfo:
    """A ``virDomainGetGuestInfo`` answer (libvirt-python's ``dom.guestInfo()`` dict: ``os.id``,
    ``os.pretty-name``, ``os.version``, ``os.kernel-release``, ``hostname``, ``fs.count``, ``fs.<n>.mountpoint``,
    ``fs.<n>.fstype``, ``fs.<n>.total-bytes``, ``fs.<n>.used-bytes``...) as a :class:`GuestInfo` from the agent
    (no interfaces: they are a separate call)."""
    return GuestInfo(
        agent=True,
        os_name=_text(info, "os.pretty-name") or _text(info, "os.name"),
        os_id=_text(info, "os.id"),
        os_version=_text(info, "os.version") or _text(info, "os.version-id"),
        kernel=_text(info, "os.kernel-release"),
        machine=_text(info, "os.machine"),
        hostname=_text(info, "hostname"),
        filesystems=parse_filesystems(info),
    )


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def parse_interfaces(result: Mapping[str, Mapping[str, Any]] | None, source: Source) -> tuple[GuestInterface, ...]:
    """A ``virDomainInterfaceAddresses`` answer (``{name: {"hwaddr": mac, "addrs": [{"addr", "prefix", "type"}]}}``)
    as interfaces sorted by name, addresses IPv4 first; the loopback interface is left out."""
    nics = []
    for name, data in (result or {}).items():
        addrs = list((data or {}).get("addrs") or [])
        if name == "lo" or (addrs and all(_is_loopback(str(a.get("addr") or "")) for a in addrs)):
            continue
        ordered = sorted(addrs, key=lambda a: 0 if a.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4 else 1)
        texts: list[str] = []
        for addr in ordered:
            address = str(addr.get("addr") or "")
            if not address:
                continue
            prefix = addr.get("prefix")
            text = f"{address}/{prefix}" if prefix is not None else address
            if text not in texts:
                texts.append(text)
        mac = str((data or {}).get("hwaddr") or "").lower()
        nics.append(GuestInterface(name=str(name), mac=mac, addresses=tuple(texts), source=source))
    return tuple(sorted(nics, key=lambda nic: nic.name))


def agent_reason(exc: HypervisorError) -> str:
    """Why the agent gave nothing, in words, from the error libvirt answered."""
    code = exc.libvirt_code
    message = exc.detail.lower()
    if code == libvirt.VIR_ERR_NO_SUPPORT:
        return "This host's libvirt driver cannot ask a guest agent."
    if "not configured" in message:
        return ("The VM has no guest-agent channel (add one, then install and start qemu-guest-agent in the "
                "guest).")
    if "not connected" in message:
        return "The guest agent is not connected: it is not installed or not running in the guest."
    if code == libvirt.VIR_ERR_OPERATION_INVALID and "not running" in message:
        return "The VM is not running."
    if code in (libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_OPERATION_TIMEOUT):
        return f"The guest agent did not answer in time ({exc.detail})."
    return f"The guest agent gave nothing: {exc.detail}"


# ------------------------------------------------------------------------------------------------ reading
def _guest_info_call(dom: libvirt.virDomain, *, types: int) -> Any:
    return dom.guestInfo(types, 0)


def _addresses_call(dom: libvirt.virDomain, *, source: int) -> Any:
    return dom.interfaceAddresses(source, 0)


def _set_timeout_call(dom: libvirt.virDomain, *, seconds: int) -> Any:
    return dom.agentSetResponseTimeout(seconds, 0)


def _leases(dom: Domain) -> tuple[GuestInterface, ...]:
    try:
        result = dom.conn.run(functools.partial(_addresses_call, dom.raw,
                                                source=libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE))
    except (HostUnavailable, NotFound):
        raise
    except HypervisorError as exc:
        log.debug("no DHCP leases for %s: %s", dom.name, exc.detail)
        return ()
    return parse_interfaces(result, "lease")


def guest_run_id(dom: Domain) -> int | None:
    """libvirt's id of the domain's current run as its lookup read it (no call; None when it is not running). Every
    start gives a new id, so an answer kept under it never outlives the run it describes."""
    value = int(dom.raw.ID())
    return value if value >= 0 else None


def guest_info(dom: Domain, timeout_s: int = 2) -> GuestInfo:
    """What the guest agent of ``dom`` says, or, when it does not answer, the
    addresses from DHCP leases and the reason in words. Waits at most ``timeout_s`` seconds for the agent.

    libvirt calls, all counted by the connection: the state; for a running VM the agent's timeout, the guest
    info, then the agent's addresses (or the leases when the agent gave nothing). Raises only when the host or
    the domain is gone (:class:`HostUnavailable`, :class:`NotFound`)."""
    state = dom.state()
    if not state.is_active:
        return GuestInfo(agent=False, running=False, agent_asked=False, error="The VM is not running.")
    if state in (DomainState.PAUSED, DomainState.PMSUSPENDED):  # its agent cannot answer: do not wait for it
        return GuestInfo(agent=False, agent_asked=False, interfaces=_leases(dom),
                         error=f"The VM is {state.label}: its agent cannot answer.")
    raw = dom.raw
    try:
        dom.conn.run(functools.partial(_set_timeout_call, raw, seconds=max(-2, int(timeout_s))))
    except (HostUnavailable, NotFound):
        raise
    except HypervisorError as exc:  # an older libvirt or a driver without it: its default timeout applies
        log.debug("cannot set the agent timeout of %s: %s", dom.name, exc.detail)
    try:
        answer = dom.conn.run(functools.partial(_guest_info_call, raw, types=GUEST_INFO_TYPES))
    except (HostUnavailable, NotFound):
        raise
    except HypervisorError as exc:
        return GuestInfo(agent=False, interfaces=_leases(dom), error=agent_reason(exc))
    info = parse_guest_info(answer or {})
    try:
        result = dom.conn.run(functools.partial(_addresses_call, raw,
                                                source=libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT))
    except (HostUnavailable, NotFound):
        raise
    except HypervisorError as exc:  # the agent answered the first question but not this one
        log.debug("no agent addresses for %s: %s", dom.name, exc.detail)
        return dataclasses.replace(info, interfaces=_leases(dom))
    return dataclasses.replace(info, interfaces=parse_interfaces(result, "agent"))


__all__ = [
    "GUEST_INFO_TYPES", "GuestFilesystem", "GuestInfo", "GuestInterface", "agent_reason", "guest_info", "guest_run_id",
    "parse_filesystems", "parse_guest_info", "parse_interfaces",
]
