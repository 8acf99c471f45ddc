"""The text console: a websocket (same origin, portal session) attached to the guest's serial console stream.

Thin: checks who asks (the same rules as the graphical console), opens libvirt's console stream in a worker thread,
relays bytes both ways. libvirt calls never run on the event loop; guest output arrives from libvirt's event thread
and is handed to this connection only (one stream per browser session, nothing shared between users).

A user who may see the VM but not operate it reads the output; what they send is dropped (and counted in the
session's end). libvirt allows one stream per console: someone who may type takes it over from a viewer.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from kvmweb.core.errors import NotFoundError
from kvmweb.machines.selectors import vm_get

from . import services
from .models import ConsoleSession
from .origin import origin_allowed
from .selectors import console_view_only
from .services import ConsoleRefused

WATCH_INTERVAL = 1.0  # seconds between checks that the user may still use the VM


def _origin(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            return value.decode("latin-1")
    return None


class SerialConsoleConsumer(AsyncWebsocketConsumer):
    # This consumer needs no channel layer (nothing is broadcast; output goes to this connection only). Opting out
    # also keeps it clear of channels-redis receive timeouts, which end every consumer that listens on the layer.
    channel_layer_alias = "kvmweb-console-no-layer"
    console: services.ConsoleStream | None = None
    record: ConsoleSession | None = None
    watcher: asyncio.Task[None] | None = None
    view_only = False
    dropped = 0  # input messages of a view-only session, dropped

    async def connect(self) -> None:
        await self.accept()  # accept first, so that a refusal reaches the page as a close reason
        try:
            user, vm, self.view_only = await self._admit()
            loop = asyncio.get_running_loop()
            self.outbox: asyncio.Queue[bytes | str] = asyncio.Queue()

            def on_data(data: bytes) -> None:  # libvirt's event thread
                loop.call_soon_threadsafe(self.outbox.put_nowait, data)

            def on_close(reason: str) -> None:
                loop.call_soon_threadsafe(self.outbox.put_nowait, reason)

            self.console = await self._open(vm, on_data, on_close)
        except ConsoleRefused as refused:
            await self._close_with(refused.close_code, refused.reason)
            return
        client = str((self.scope.get("client") or ["?"])[0])
        self.user_id, self.vm_id, self.vm_uuid = user.pk, vm.pk, vm.uuid
        self.record = await database_sync_to_async(services.console_session_start)(
            user=user, vm=vm, client=client, kind="serial", view_only=self.view_only)
        self.pump = asyncio.create_task(self._pump())
        self.watcher = asyncio.create_task(self._watch())

    async def _open(self, vm, on_data, on_close) -> services.ConsoleStream:  # type: ignore[no-untyped-def]
        """libvirt's console stream (one per domain): someone who may type takes it over from viewers."""
        open_stream = sync_to_async(services.console_serial_open, thread_sensitive=False)
        try:
            return await open_stream(vm, on_data, on_close)
        except services.ConsoleInUse:
            if self.view_only or not await database_sync_to_async(services.console_serial_take_over)(vm=vm):
                raise
        return await open_stream(vm, on_data, on_close, force=True)

    @database_sync_to_async
    def _admit(self):  # type: ignore[no-untyped-def]
        user = self.scope.get("user")
        if not origin_allowed(_origin(self.scope)):
            raise ConsoleRefused(services.CLOSE_ORIGIN, "Websocket Origin not allowed.")
        if user is None or not user.is_authenticated:
            raise ConsoleRefused(services.CLOSE_NOT_LOGGED_IN, "Not logged in to the portal.")
        try:
            vm = vm_get(actor=user, uuid=self.scope["url_route"]["kwargs"]["uuid"])
        except NotFoundError as exc:
            raise ConsoleRefused(services.CLOSE_VM_GONE, exc.detail) from None
        return user, vm, console_view_only(user, vm)

    async def _pump(self) -> None:
        """Guest output to the browser; a text item means the stream ended (its reason)."""
        while True:
            item = await self.outbox.get()
            if isinstance(item, str):
                if self.view_only and await sync_to_async(services.console_serial_taken_over)(vm_uuid=self.vm_uuid):
                    item = services.TAKEN_OVER
                await self._end(services.CLOSE_DISPLAY_CLOSED, item)
                return
            await self.send(bytes_data=item)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            pair = (self.user_id, self.vm_id)
            lost = await database_sync_to_async(services.console_access_lost)(
                [pair], operating=() if self.view_only else (pair,))
            if lost:
                why = next(iter(lost.values()))
                await self._end(why.close_code, why.reason)
                return

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.console is None:
            return
        if self.view_only:
            self.dropped += 1
            return
        data = bytes_data if bytes_data is not None else (text_data or "").encode("utf-8")
        if data:
            await sync_to_async(self.console.write, thread_sensitive=False)(data[:4096])

    async def _end(self, code: int, reason: str) -> None:
        await self._release(reason)
        await self._close_with(code, reason)

    async def _close_with(self, code: int, reason: str) -> None:
        """daphne drops a close frame's reason: say it first in a text frame (guest output is always binary)."""
        await self.send(text_data=json.dumps({"type": "closed", "code": code, "reason": reason}))
        await self.close(code=code, reason=reason[:120])

    async def _release(self, reason: str) -> None:
        console, self.console = self.console, None
        if console is not None:
            await sync_to_async(console.close, thread_sensitive=False)()
        record, self.record = self.record, None
        if record is not None and self.dropped:
            reason = f"{reason} (view only: dropped {self.dropped} input messages)"
        if record is not None:
            await database_sync_to_async(services.console_session_end)(session=record, reason=reason)
        current = asyncio.current_task()
        for task in (getattr(self, "pump", None), self.watcher):
            if task is not None and task is not current:
                task.cancel()

    async def disconnect(self, code: int) -> None:
        await self._release("closed by the browser")
