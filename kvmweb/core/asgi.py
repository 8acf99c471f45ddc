"""The web process's Django application: Django's ASGI handler, except that the raw body of an upload's piece
(``PUT`` with ``Content-Type: application/octet-stream``) is not spooled into a temporary file before the view
runs. The view reads it from the server as it arrives (``request.read(n)``), so the pieces go on into libvirt's
stream while the client is still sending them, and the web process holds about one read at a time. Every other
request is Django's own. Middleware, authentication, CSRF and the view's checks run as usual, before any of the
body is read."""
from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

import django
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

Message = dict[str, Any]


def _raw_upload(scope: dict[str, Any]) -> bool:
    if scope.get("type") != "http" or scope.get("method") != "PUT":
        return False
    ctype = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
    return ctype.split(b";")[0].strip().lower() == b"application/octet-stream"


class BodyStream:
    """A request body that arrives while the view reads it. A task on the event loop takes the server's body
    messages into a buffer of at most ``limit`` bytes (then waits for room: the server stops reading the socket);
    the view's thread reads from that buffer (``read(n)``: ``n`` bytes, fewer only at the end), so receiving and
    the view's work (libvirt's stream) overlap. Called as ``receive``, it is what Django listens to for the
    client's disconnect, once the body is over."""

    def __init__(self, receive: Any, *, limit: int = 4 * 1024 * 1024) -> None:
        self._receive = receive
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._ready = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._more = True  # more body may come
        self._aborted = False
        self._room = asyncio.Event()
        self._room.set()
        self._done = asyncio.Event()
        self._task = self._loop.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                await self._room.wait()
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    self._aborted = True
                    return
                data = message.get("body", b"")
                with self._ready:
                    if data:
                        self._chunks.append(data)
                        self._size += len(data)
                        if self._size >= self._limit:
                            self._room.clear()
                    self._ready.notify()
                if not message.get("more_body", False):
                    return
        finally:
            with self._ready:
                self._more = False
                self._ready.notify()
            self._done.set()

    async def __call__(self) -> Message:
        await self._done.wait()
        if self._aborted:
            return {"type": "http.disconnect"}
        return await self._receive()  # type: ignore[no-any-return]

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer only at the end, or above the buffer's limit; all that is left when ``size`` is
        negative); ``b""`` at the end of the body."""
        if size < 0:
            return b"".join(iter(lambda: self.read(self._limit), b""))
        with self._ready:
            while self._more and self._size < min(size, self._limit):
                self._ready.wait()
            if self._aborted:
                raise RequestAborted("The client went away before the whole body arrived.")
            take = min(size, self._size)
            parts, have = [], 0
            while have < take:
                chunk = self._chunks.popleft()
                if have + len(chunk) > take:
                    chunk, rest = chunk[:take - have], chunk[take - have:]
                    self._chunks.appendleft(rest)
                parts.append(chunk)
                have += len(chunk)
            self._size -= have
            if not self._room.is_set() and self._size < self._limit:
                self._loop.call_soon_threadsafe(self._room.set)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int = -1) -> bytes:  # pragma: no cover - raw bodies are never read by lines
        raise OSError("A streamed body cannot be read by lines.")

    def close(self) -> None:
        """The request is over: what the view did not read is no longer wanted."""
        if not self._task.done():
            self._task.cancel()
        self._done.set()


class StreamedBodyHandler(ASGIHandler):  # type: ignore[misc]  # django-stubs are not installed
    """Django's ASGI handler, with the raw bodies of upload pieces streamed (see the module's docstring)."""

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await super().handle(scope, BodyStream(receive) if _raw_upload(scope) else receive, send)

    async def read_body(self, receive: Any) -> Any:
        if isinstance(receive, BodyStream):
            return receive
        return await super().read_body(receive)


def application() -> StreamedBodyHandler:
    """What ``django.core.asgi.get_asgi_application`` does, with the streamed handler."""
    django.setup(set_prefix=False)
    return StreamedBodyHandler()
