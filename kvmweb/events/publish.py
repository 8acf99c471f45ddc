"""Publishing live events to browsers through the channel layer (Redis).

Each browser's websocket joins one group: ``staff`` for staff, ``user.<id>`` for everyone else. An event goes to
the groups of the users it concerns and to ``staff``: nobody receives events about other users' jobs or VMs.
Publishing never fails the caller: an event that cannot be sent is logged and dropped (pages reload anyway).
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any

from channels.layers import get_channel_layer

from kvmweb.access.permissions import STAFF_GROUP, user_group

log = logging.getLogger(__name__)


def publish(event: dict[str, Any], *, user_ids: Iterable[int | None]) -> None:
    """Send ``event`` (a JSON-able dict with a ``kind``) to the given users and to staff."""
    layer = get_channel_layer()
    if layer is None:
        return
    groups = {STAFF_GROUP} | {user_group(uid) for uid in user_ids if uid is not None}
    message = {"type": "event.push", "event": event}
    try:
        _sender.run(_send_all(layer, groups, message))
    except Exception as exc:  # noqa: BLE001 - a lost event is not worth failing a VM operation for
        log.warning("could not publish event %s: %s", event.get("kind"), exc)


def publish_each(events: Mapping[int | None, dict[str, Any]]) -> None:
    """Send each reader their own event, one message per group: ``{user id: event}``, and ``{None: event}`` for
    staff (for events whose content depends on who reads it, e.g. the usage of the VMs each may see)."""
    layer = get_channel_layer()
    if layer is None or not events:
        return
    messages = {STAFF_GROUP if uid is None else user_group(uid): {"type": "event.push", "event": event}
                for uid, event in events.items()}
    try:
        _sender.run(_send_each(layer, messages))
    except Exception as exc:  # noqa: BLE001 - a lost event is not worth failing the sender for
        log.warning("could not publish %d events: %s", len(messages), exc)


async def _send_each(layer: Any, messages: dict[str, dict[str, Any]]) -> None:
    for group, message in messages.items():
        await layer.group_send(group, message)


class _Sender:
    """One event loop in a thread of its own (per process) that sends every event, whoever publishes it: a Celery
    job, a page's thread or a thread that runs a loop of its own (which it must not block on its own loop). The
    channel layer keeps its Redis connections per event loop, so a fresh loop per event (``async_to_sync`` outside
    a server) would connect to Redis anew for each one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def run(self, coro: Coroutine[Any, Any, None], timeout: float = 5) -> None:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child (Celery's prefork) starts its own
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="kvmweb-publish", daemon=True).start()
                self._pid = os.getpid()
            loop = self._loop
        asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


_sender = _Sender()


async def _send_all(layer: Any, groups: set[str], message: dict[str, Any]) -> None:
    for group in groups:
        await layer.group_send(group, message)
