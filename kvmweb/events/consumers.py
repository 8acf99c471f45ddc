"""``/ws/events/``: pushes to a browser the events its user may see (thin: the groups decide who gets what)."""
from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .publish import STAFF_GROUP, user_group


class EventsConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.groups_joined = []
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        # Staff see everything through one group; everyone else only through their own (no duplicates).
        group = STAFF_GROUP if user.is_staff else user_group(user.pk)
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)
        await self.accept()
        await self.send_json({"kind": "hello", "user": user.get_username()})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("kind") == "ping":
            await self.send_json({"kind": "pong"})

    async def event_push(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])
