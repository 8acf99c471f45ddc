"""The console proxy: websockify's WebSocket server and proxy handler, with our checks in front.

One process, one thread per connection (websockify's ``LibProxyServer``), so a connection costs no fork and the
libvirt connection is shared. For each websocket the handler, before proxying a single byte:

1. checks the ``Origin`` against the portal's ALLOWED_HOSTS / CSRF_TRUSTED_ORIGINS (cross-site websocket hijacking);
   a client without one (no browser) is accepted only with a token issued to an API client;
2. burns the one-time token (single use, ≤ 30 s, bound to user + VM + host; only its hash is stored);
3. finds the user of the portal session cookie and checks the token is theirs and they may still use the VM
   (an API client's token needs no cookie);
4. resolves the VM's display now, through libvirt (``openGraphicsFD``) or its loopback port.

A user who may watch the VM but not operate it gets a view-only session: their client's bytes go through
:class:`~kvmweb.console.rfb.ViewOnlyFilter`, which passes the handshake and screen requests and drops keyboard,
mouse and clipboard messages. Everyone else's bytes are relayed unparsed.

Refusals close the websocket with a 4xxx code and a reason the page shows. A watchdog thread ends sessions within
about a second when the VM is deleted or the user loses access. Every session is a ConsoleSession row + audit rows.
"""
from __future__ import annotations

import logging
import re
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, connections
from websockify.websocketproxy import LibProxyServer, ProxyRequestHandler

from . import services
from .origin import origin_allowed
from .rfb import RfbViolation, ViewOnlyFilter
from .services import ConsoleRefused

log = logging.getLogger("kvmweb.console.proxy")
T = TypeVar("T")
_PATH_RE = re.compile(r"/vnc/(?P<uuid>[0-9a-fA-F-]{36})/?$")


def session_user(cookie_header: str | None) -> AbstractBaseUser | None:
    """The portal user of the session cookie the browser sent along (cookies are per host, not per port)."""
    if not cookie_header:
        return None
    try:
        cookie = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return None

    class _Request:
        session = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)

    user = get_user(_Request())  # type: ignore[arg-type]
    return user if getattr(user, "is_authenticated", False) else None


def _frame_header(length: int) -> bytes:
    """The header of one unmasked, final, binary websocket frame (RFC 6455 5.2)."""
    if length < 126:
        return struct.pack(">BB", 0x82, length)
    if length < 65536:
        return struct.pack(">BBH", 0x82, 126, length)
    return struct.pack(">BBQ", 0x82, 127, length)


def _on_db_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        connections.close_all()  # a broken connection (database restarted): the next call opens a new one
        raise


class LiveSession:
    def __init__(self, user_id: int, vm_id: int, target: socket.socket, *, view_only: bool = False) -> None:
        self.user_id = user_id
        self.vm_id = vm_id
        self.target = target
        self.view_only = view_only
        self.kill_reason: ConsoleRefused | None = None

    def kill(self, why: ConsoleRefused) -> None:
        """End the session from another thread: the proxy loop sees its target close and reports ``why``."""
        if self.kill_reason is None:
            self.kill_reason = why
            try:
                self.target.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ConsoleProxyHandler(ProxyRequestHandler):
    server: ConsoleProxyServer
    # websockify reads the target 64 KiB at a time, one websocket frame each; a large framebuffer update then costs
    # many frames and system calls. Reading up to 1 MiB (whatever is ready, no waiting) halves that per-byte cost.
    buffer_size = 1 << 20

    # websockify's token plugin and auth plugin are replaced by our checks, which run after the upgrade so that
    # every refusal reaches the page as a close reason (nothing is proxied before they all pass).
    def validate_connection(self) -> None:
        return None

    def auth_connection(self) -> None:
        return None

    def _client(self) -> str:
        addr = self.client_address[0] if self.client_address else "?"
        forwarded = self.headers.get("X-Forwarded-For")
        return f"{addr} (for {forwarded})" if forwarded else str(addr)

    def _admit(self, vm_uuid: str, cookie: str | None, origin: str | None) -> services.ConsoleGrant:
        """All checks that need the database (runs on the server's database thread). Refusals are audited."""
        user = None
        try:
            if not vm_uuid:
                raise ConsoleRefused(services.CLOSE_BAD_TOKEN, "Unknown console address.")
            user = session_user(cookie)
            token = (parse_qs(urlparse(self.path).query).get("token") or [None])[0]
            return services.console_token_consume(token=token, user=user, vm_uuid=vm_uuid,
                                                  origin_ok=origin_allowed(origin) if origin is not None else None)
        except ConsoleRefused as refused:
            self._refused(user, vm_uuid, refused)
            raise

    def _refused(self, user: AbstractBaseUser | None, vm_uuid: str, refused: ConsoleRefused) -> None:
        client = self._client()
        log.info("console refused for %s on %s: %s", client, vm_uuid or self.path, refused.reason)
        services.console_refusal_audit(user=user, vm_uuid=vm_uuid, client=client, reason=refused.reason)

    def new_websocket_client(self) -> None:
        match = _PATH_RE.search(urlparse(self.path).path)
        vm_uuid = match.group("uuid").lower() if match and services.valid_uuid(match.group("uuid")) else ""
        db = self.server.db
        try:
            grant = db(self._admit, vm_uuid, self.headers.get("Cookie"), self.headers.get("Origin"))
            try:
                target = services.console_open_display(grant.vm)  # libvirt only: in this thread
            except ConsoleRefused as refused:
                db(self._refused, grant.user, vm_uuid, refused)
                raise
        except ConsoleRefused as refused:
            raise self.CClose(refused.close_code, refused.reason) from None
        # The session row is written while the first bytes already flow; its end is queued behind it.
        record = self.server.db_later(services.console_session_start, user=grant.user, vm=grant.vm,
                                      client=self._client(), view_only=grant.view_only)
        live = LiveSession(grant.user.pk, grant.vm.pk, target, view_only=grant.view_only)
        self.server.register(live)
        self.view_filter = ViewOnlyFilter() if grant.view_only else None
        reason = "closed"
        try:
            self.request.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
            # Larger kernel buffers: a framebuffer update moves in fewer, larger steps through the proxy loop.
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            target.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            self.do_proxy(target)
        except self.CClose as exc:
            if live.kill_reason is not None:
                reason = live.kill_reason.reason
                raise self.CClose(live.kill_reason.close_code, reason) from None
            if exc.args and exc.args[1:] == ("Target closed",):
                reason = "The display closed (the VM shut down or rebooted)."
                raise self.CClose(services.CLOSE_DISPLAY_CLOSED, reason) from None
            reason = "closed by the browser"
            raise
        except ConsoleRefused as refused:  # a view-only client sent what the filter cannot pass or skip
            reason = refused.reason
            raise self.CClose(refused.close_code, reason) from None
        except OSError as exc:
            reason = f"connection error: {exc}"
        finally:
            if self.view_filter is not None and self.view_filter.dropped:
                reason = f"{reason} (view only: {self.view_filter.summary()})"
            self.server.unregister(live)
            try:
                target.close()
            except OSError:
                pass
            self.server.db_later(lambda: services.console_session_end(session=record.result(), reason=reason))

    view_filter: ViewOnlyFilter | None = None

    def recv_frames(self) -> tuple[list[bytes], Any]:
        """websockify's recv_frames; a view-only session's bytes go through the filter (others' are not looked at:
        one attribute test per read)."""
        bufs, closed = super().recv_frames()
        if self.view_filter is None:
            return bufs, closed
        try:
            bufs = [passed for passed in map(self.view_filter.feed, bufs) if passed]
        except RfbViolation as exc:
            raise ConsoleRefused(services.CLOSE_VIEW_ONLY, f"View-only console: {exc}.") from None
        return bufs, closed

    def send_frames(self, bufs: list[bytes] | None = None) -> bool:
        """websockify's send_frames, without its copies: websockify builds ``header + payload`` and re-slices its send
        buffer after every partial write (a copy of the rest each time); here each binary frame goes out with one
        ``sendmsg([header, payload view])`` and a partial write only moves an offset. Returns True while data is
        pending (the proxy loop then waits until the socket is writable), like the original."""
        if bufs:
            self.send_parts.extend(bufs)
        sock = self.request.socket
        while self.send_parts:
            payload = self.send_parts[0]
            if self._out_header is None:
                self._out_header = _frame_header(len(payload))
                self._out_offset = 0
            header, offset = self._out_header, self._out_offset
            parts = [header[offset:], memoryview(payload)] if offset < len(header) else \
                [memoryview(payload)[offset - len(header):]]
            try:
                sent = sock.sendmsg(parts)
            except (BlockingIOError, InterruptedError):
                return True
            self._out_offset += sent
            if self._out_offset < len(header) + len(payload):
                return True
            self.send_parts.pop(0)
            self._out_header = None
        return False

    _out_header: bytes | None = None
    _out_offset = 0

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0] if self.client_address else "?", format % args)


class ConsoleProxyServer(LibProxyServer):
    """websockify's threaded WebSocket proxy server with a registry of live sessions and their watchdog."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The listen backlog (socketserver's default is 5): many consoles opened at once (a class, a wall of screens)
    # wait in the kernel's queue instead of being dropped and retried a second later.
    request_queue_size = 1024

    def __init__(self, *, listen_host: str, listen_port: int, watchdog_interval: float = 1.0) -> None:
        super().__init__(RequestHandlerClass=ConsoleProxyHandler, listen_host=listen_host, listen_port=listen_port)
        self.sessions: set[LiveSession] = set()
        self._lock = threading.Lock()
        # Every database call of the proxy runs on this one thread: one long-lived connection (no connect per
        # websocket), and SQLite writes never contend with each other.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-db")
        self._stop = threading.Event()
        self.watchdog_interval = watchdog_interval
        self._watchdog = threading.Thread(target=self._watch, name="console-watchdog", daemon=True)
        self._watchdog.start()

    def db(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the database thread and wait for its result (exceptions included)."""
        return self.db_later(fn, *args, **kwargs).result()

    def db_later(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._db.submit(_on_db_thread, fn, *args, **kwargs)

    def register(self, live: LiveSession) -> None:
        with self._lock:
            self.sessions.add(live)

    def unregister(self, live: LiveSession) -> None:
        with self._lock:
            self.sessions.discard(live)

    def server_close(self) -> None:
        self._stop.set()
        super().server_close()
        self._db.shutdown(wait=True)  # let queued session ends reach the database

    def _watch(self) -> None:
        while not self._stop.wait(self.watchdog_interval):
            try:
                self.db(self.check_sessions)
            except Exception:  # pragma: no cover - keep watching whatever one round hit
                log.exception("console watchdog round failed")

    def check_sessions(self) -> None:
        with self._lock:
            live = list(self.sessions)
        if not live:
            return
        lost = services.console_access_lost([(s.user_id, s.vm_id) for s in live],
                                            operating={(s.user_id, s.vm_id) for s in live if not s.view_only})
        for session in live:
            why = lost.get((session.user_id, session.vm_id))
            if why is not None:
                session.kill(why)
        # A domain undefined outside the portal: one lookup per VM still watched.
        gone = services.console_vms_gone({s.vm_id for s in live if (s.user_id, s.vm_id) not in lost})
        for session in live:
            if session.vm_id in gone:
                session.kill(ConsoleRefused(services.CLOSE_VM_GONE, "The virtual machine was deleted."))
