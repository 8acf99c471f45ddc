"""One lazily opened, locked, self-healing libvirt connection per host URI.

``registry.connection(uri)`` hands out a :class:`Connection`. Every libvirt API call goes through
``Connection.call``: it opens the connection on first use, counts calls (benchmarks and tests read the count),
and when the transport broke (libvirtd restarted, network cut) it reopens once and retries. A host that could not
be reached is not tried again for ``RETRY_AFTER`` seconds: pages that list every host stay fast while one of them
does not answer (each answers at once with the remembered reason).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import libvirt

from .errors import HostUnavailable, is_transport_error, open_failure, shorten_uri, translate

log = logging.getLogger(__name__)
T = TypeVar("T")

KEEPALIVE_INTERVAL = 5  # seconds between keepalive probes
KEEPALIVE_COUNT = 3  # unanswered probes before libvirt closes the connection
RETRY_AFTER = 15.0  # seconds a failed connection attempt is remembered before the host is tried again
CONNECT_TIMEOUT = 5.0  # seconds a remote host's port gets to accept a TCP connection before libvirt is asked
# libvirt's network transports whose port the registry checks first (libvirt itself waits as long as the kernel does,
# minutes for a host that drops packets), and their default ports. Plain qemu+ssh runs ssh(1), which may go through
# a proxy of the user's configuration: not checked.
_PORTS = {"qemu+tcp": 16509, "qemu+tls": 16514, "qemu+libssh": 22, "qemu+libssh2": 22}


def _check_port(uri: str) -> None:
    """Refuse at once a remote host whose libvirt port does not accept a connection within CONNECT_TIMEOUT."""
    parts = urlsplit(uri)
    if parts.scheme not in _PORTS or not parts.hostname:
        return
    address = (parts.hostname, parts.port or _PORTS[parts.scheme])
    try:
        socket.create_connection(address, timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise HostUnavailable(f"Cannot connect to {shorten_uri(uri)}: {parts.hostname} port {address[1]}: "
                              f"{reason}.") from exc


def _silence_libvirt(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; we raise them instead."""


libvirt.registerErrorHandler(_silence_libvirt, None)


class _EventLoop:
    """libvirt's default event loop in a daemon thread: needed for keepalive, close callbacks and events."""

    def __init__(self) -> None:
        self._pid = 0
        self._lock = threading.Lock()
        self._registered = False

    def ensure_running(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            if not self._registered:
                libvirt.virEventRegisterDefaultImpl()
                self._registered = True
            thread = threading.Thread(target=self._run, name="libvirt-events", daemon=True)
            thread.start()
            self._pid = os.getpid()

    @staticmethod
    def _run() -> None:
        while True:
            try:
                libvirt.virEventRunDefaultImpl()
            except Exception:  # pragma: no cover - keep the loop alive whatever a callback does
                log.exception("libvirt event loop iteration failed")


event_loop = _EventLoop()


class Connection:
    """A libvirt connection to one host, opened on first use and reopened after it breaks."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.calls = 0
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.RLock()
        self._failed: tuple[float, HostUnavailable] | None = None  # when the last attempt to open failed, and why

    # -- opening and closing -------------------------------------------------------------------------
    def _open(self) -> libvirt.virConnect:
        if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_AFTER:
            known = self._failed[1]
            raise type(known)(known.detail, libvirt_code=known.libvirt_code)
        event_loop.ensure_running()
        try:
            _check_port(self.uri)
        except HostUnavailable as exc:
            self._failed = (time.monotonic(), exc)
            raise
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            failure = open_failure(exc, uri=self.uri)
            self._failed = (time.monotonic(), failure)
            raise failure from exc
        self._failed = None
        try:
            conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
        except libvirt.libvirtError:
            pass  # local drivers such as test:/// have no keepalive; nothing to do
        try:
            conn.registerCloseCallback(self._on_close, None)
        except libvirt.libvirtError:
            pass
        log.info("opened libvirt connection %s", self.uri)
        return conn

    def _on_close(self, conn: libvirt.virConnect, reason: int, _opaque: object) -> None:
        log.warning("libvirt connection %s closed (reason %s)", self.uri, reason)
        with self._lock:
            if self._conn is conn:
                self._conn = None

    def get(self) -> libvirt.virConnect:
        """The open virConnect, opening (or reopening) it when needed."""
        with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    alive = conn.isAlive() == 1
                except libvirt.libvirtError:
                    alive = False
                if not alive:
                    self._drop(conn)
                    conn = None
            if conn is None:
                conn = self._conn = self._open()
            return conn

    def _drop(self, conn: libvirt.virConnect | None) -> None:
        with self._lock:
            if conn is not None and self._conn is conn:
                self._conn = None
        if conn is not None:
            try:
                conn.unregisterCloseCallback()
            except libvirt.libvirtError:
                pass
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    def close(self) -> None:
        """Close the connection and forget a failed attempt (the next use tries at once)."""
        self._failed = None
        self._drop(self._conn)

    # -- calling -------------------------------------------------------------------------------------
    def call(self, fn: Callable[[libvirt.virConnect], T]) -> T:
        """Run one libvirt API call (``fn`` makes exactly one) and translate its errors.

        A transport failure (the daemon went away) drops the connection and tries once more on a new one.
        """
        for attempt in (1, 2):
            conn = self.get()
            self.calls += 1
            try:
                return fn(conn)
            except libvirt.libvirtError as exc:
                if attempt == 1 and is_transport_error(exc):
                    log.warning("libvirt call on %s failed in transport, reconnecting: %s", self.uri, exc)
                    self._drop(conn)
                    continue
                raise translate(exc, uri=self.uri) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def run(self, fn: Callable[[], T]) -> T:
        """Run a call on an object already obtained from this connection (a domain, a pool...)."""
        self.calls += 1
        try:
            return fn()
        except libvirt.libvirtError as exc:
            if is_transport_error(exc):
                self._drop(self._conn)
            raise translate(exc, uri=self.uri) from exc


class Registry:
    """All connections of this process, one per URI. Safe across fork: a child starts with none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[str, Connection] = {}
        self._pid = os.getpid()

    def connection(self, uri: str) -> Connection:
        with self._lock:
            if self._pid != os.getpid():
                # Forked (a Celery prefork child, for example): the parent's sockets are not ours to use.
                self._connections = {}
                self._pid = os.getpid()
            conn = self._connections.get(uri)
            if conn is None:
                conn = self._connections[uri] = Connection(uri)
            return conn

    def forget(self, uri: str) -> None:
        """Close and drop the connection to ``uri`` (a host removed, or added again: the next use starts afresh)."""
        with self._lock:
            conn = self._connections.pop(uri, None)
        if conn is not None:
            conn.close()

    def close_all(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()


registry = Registry()
