"""A domain's consoles: its VNC display as a socket, and its serial console as a libvirt stream.

The VNC display is resolved when asked, never from a remembered port: ``listen='none'`` displays (what the portal
creates) are reached through libvirt (``openGraphicsFD``), displays defined elsewhere that listen on the loopback
address through their TCP port.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import libvirt

from .errors import DomainNotRunning, HypervisorError, InvalidRequest, OperationFailed, OperationInvalid, translate

if TYPE_CHECKING:
    from .domain import Domain


class NoGraphics(HypervisorError):
    """The domain has no VNC display (or one the portal cannot reach without exposing it)."""

    code = "no_graphics"


class NoSerialConsole(HypervisorError):
    code = "no_serial_console"


class ConsoleBusy(OperationInvalid):
    """The domain's serial console is open elsewhere (libvirt allows one stream per console)."""

    code = "console_busy"


def _is_loopback(address: str | None) -> bool:
    if not address or address == "localhost":
        return address == "localhost"
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def open_vnc_socket(dom: Domain, *, timeout: float = 5.0) -> socket.socket:
    """A connected socket speaking RFB to the domain's VNC server (blocking mode).

    Raises OperationInvalid when the domain does not run, NoGraphics when it has no display the portal can reach.
    """
    if not dom.state().is_active:
        raise DomainNotRunning(f"{dom.name} is not running.")
    display = dom.document().vnc_display()
    if display is None:
        raise NoGraphics(f"{dom.name} has no graphical display (VNC); use its text console if it has one.")
    if display.listen == "address" and display.port and _is_loopback(display.address):
        host = "::1" if display.address == "::1" else "127.0.0.1"
        try:
            sock = socket.create_connection((host, display.port), timeout=timeout)
        except OSError as exc:
            raise OperationInvalid(f"The display of {dom.name} does not answer on its loopback port: {exc}") from exc
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    try:
        fd = dom.conn.run(lambda: dom.raw.openGraphicsFD(0, 0))
    except InvalidRequest as exc:
        raise NoGraphics(
            f"The display of {dom.name} can only be reached through libvirt on a local host, and this host "
            f"cannot hand it over ({exc.detail})."
        ) from exc
    return socket.socket(fileno=fd)


class SerialConsole:
    """The domain's serial console as a non-blocking libvirt stream.

    ``on_data(bytes)`` runs in libvirt's event-loop thread for each chunk the guest writes; ``on_close(reason)``
    once when the stream ends. ``write`` may be called from any thread. One console per domain at a time: a second
    opener is refused (libvirt's own rule without the FORCE flag), unless it opens with ``force``, which ends the
    stream open elsewhere.
    """

    def __init__(self, dom: Domain, on_data: Callable[[bytes], None], on_close: Callable[[str], None], *,
                 force: bool = False) -> None:
        self.dom = dom
        self._on_data = on_data
        self._on_close = on_close
        self._lock = threading.Lock()
        self._closed = False
        conn = dom.conn
        if not dom.state().is_active:
            raise DomainNotRunning(f"{dom.name} is not running.")
        if not dom.document().has_serial_console:
            raise NoSerialConsole(f"{dom.name} has no serial console.")
        self._stream = conn.call(lambda c: c.newStream(libvirt.VIR_STREAM_NONBLOCK))
        try:
            flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else libvirt.VIR_DOMAIN_CONSOLE_SAFE
            conn.run(lambda: dom.raw.openConsole(None, self._stream, flags))
        except (OperationFailed, OperationInvalid, InvalidRequest) as exc:
            self._abort_quietly()
            if "active console session" in exc.detail.lower():
                raise ConsoleBusy(f"The text console of {dom.name} is already open in another window.") from exc
            raise OperationInvalid(f"The text console of {dom.name} cannot be opened: {exc.detail}") from exc
        events = libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP
        conn.run(lambda: self._stream.eventAddCallback(events, self._event, None))

    def _event(self, stream: libvirt.virStream, events: int, _opaque: object) -> None:
        if events & libvirt.VIR_STREAM_EVENT_READABLE:
            while True:
                try:
                    data = stream.recv(16384)
                except libvirt.libvirtError as exc:
                    self._finish(f"console stream error: {translate(exc).detail}")
                    return
                if data == -2:  # would block: wait for the next event
                    break
                if not data:
                    self._finish("The guest closed its console.")
                    return
                self._on_data(bytes(data))
        if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
            self._finish("The console ended (the guest stopped?).")

    def write(self, data: bytes) -> None:
        """Send keystrokes to the guest (small writes; retried briefly when libvirt would block)."""
        view = memoryview(data)
        attempts = 0
        while view and not self._closed:
            try:
                sent = self._stream.send(bytes(view))
            except libvirt.libvirtError as exc:
                self._finish(f"console stream error: {translate(exc).detail}")
                return
            if sent == -2:
                attempts += 1
                if attempts > 200:
                    return
                threading.Event().wait(0.005)
                continue
            view = view[sent:]

    def _abort_quietly(self) -> None:
        try:
            self._stream.abort()
        except libvirt.libvirtError:
            pass

    def _finish(self, reason: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._stream.eventRemoveCallback()
        except libvirt.libvirtError:
            pass
        self._abort_quietly()
        self._on_close(reason)

    def close(self) -> None:
        self._finish("closed")

