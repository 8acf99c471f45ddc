"""Domain lifecycle and device events of one host (``virConnectDomainEventRegisterAny``), with reconnection.

    listener = DomainEventListener("qemu:///system", on_event=print)
    listener.run(stop)          # blocks until ``stop`` (a threading.Event) is set; reconnects when the host goes away

Callbacks from libvirt run in the libvirt event-loop thread; this module only queues them there and calls
``on_event`` from the thread that called ``run``, so a slow consumer never stalls keepalives.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from .domain import DomainState
from .registry import event_loop

log = logging.getLogger(__name__)

_EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
# The state a domain is in right after each event (read from the event itself: no extra libvirt call).
_STATE_AFTER = {
    "started": DomainState.RUNNING,
    "resumed": DomainState.RUNNING,
    "suspended": DomainState.PAUSED,
    "stopped": DomainState.SHUTOFF,
    "crashed": DomainState.CRASHED,
    "pmsuspended": DomainState.PMSUSPENDED,
}


@dataclass(frozen=True)
class DomainEvent:
    uri: str
    uuid: str
    name: str
    event: str  # defined, undefined, started, suspended, resumed, stopped, shutdown, pmsuspended, crashed,
    #             device-added, device-removed (a device of a running domain hot-plugged or unplugged)
    detail: int
    state: DomainState | None  # None for undefined; else the state right after the event

    @property
    def gone(self) -> bool:
        return self.event == "undefined"


class DomainEventListener:
    """One host's domain events, delivered to ``on_event``; reopens the connection when it breaks."""

    def __init__(self, uri: str, on_event: Callable[[DomainEvent], None], *, retry_max: float = 30.0,
                 on_status: Callable[[str], None] | None = None) -> None:
        self.uri = uri
        self.on_event = on_event
        self.on_status = on_status or (lambda _s: None)
        self.retry_max = retry_max
        self.connected = threading.Event()
        self._queue: queue.Queue[DomainEvent | None] = queue.Queue()
        self._conn: libvirt.virConnect | None = None
        self._callback_ids: list[int] = []

    # -- in the libvirt event-loop thread ---------------------------------------------------------------
    def _lifecycle(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int,
                   _opaque: object) -> None:
        self._put(dom, _EVENTS.get(event, "unknown"), detail)

    def _device(self, kind: str) -> Callable[..., None]:
        def callback(_conn: libvirt.virConnect, dom: libvirt.virDomain, _alias: str, _opaque: object) -> None:
            self._put(dom, kind, 0)
        return callback

    def _put(self, dom: libvirt.virDomain, kind: str, detail: int) -> None:
        state = _STATE_AFTER.get(kind)
        if state is None and kind != "undefined":
            try:
                state = DomainState.from_code(dom.state()[0])
            except libvirt.libvirtError:
                state = None
        self._queue.put(DomainEvent(self.uri, dom.UUIDString(), dom.name(), kind, detail, state))

    def _closed(self, _conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        log.warning("event connection to %s closed (reason %s)", self.uri, reason)
        self.connected.clear()
        self._queue.put(None)  # wake the runner so it reconnects

    # -- in the runner's thread -------------------------------------------------------------------------
    def _open(self) -> None:
        event_loop.ensure_running()
        conn = libvirt.open(self.uri)
        try:
            conn.setKeepAlive(5, 3)
        except libvirt.libvirtError:
            pass
        try:
            conn.registerCloseCallback(self._closed, None)
        except libvirt.libvirtError:
            pass
        self._callback_ids = [
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None),
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
                                        self._device("device-added"), None),
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                        self._device("device-removed"), None),
        ]
        self._conn = conn
        self.connected.set()
        self.on_status("connected")
        log.info("listening to domain events of %s", self.uri)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.connected.clear()
        if conn is None:
            return
        steps: list[Callable[[], object]] = [
            *[lambda cid=cid: conn.domainEventDeregisterAny(cid) for cid in self._callback_ids],
            conn.unregisterCloseCallback,
            conn.close,
        ]
        for step in steps:
            try:
                step()
            except libvirt.libvirtError:
                pass
        self._callback_ids = []

    def _alive(self) -> bool:
        try:
            return self._conn is not None and self._conn.isAlive() == 1
        except libvirt.libvirtError:
            return False

    def run(self, stop: threading.Event) -> None:
        """Deliver events until ``stop`` is set. Never raises for a host that is down: it retries, backing off."""
        delay = 0.5
        while not stop.is_set():
            if not self._alive():
                self._close()
                try:
                    self._open()
                    delay = 0.5
                except libvirt.libvirtError as exc:
                    self.on_status(f"unavailable: {exc.get_error_message()}")
                    log.warning("cannot listen to %s (%s); retrying in %.1fs", self.uri, exc, delay)
                    stop.wait(delay)
                    delay = min(delay * 2, self.retry_max)
                    continue
            try:
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                continue
            try:
                self.on_event(item)
            except Exception:  # noqa: BLE001 - one bad event must not stop the listener
                log.exception("handling %s failed", item)
        self._close()
