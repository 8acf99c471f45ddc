"""A raw websocket client for the proxy tests (the `websockets` package, sync API)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from .conftest import PORTAL_ORIGIN


@dataclass
class Outcome:
    banner: bytes | None  # the first bytes from the VNC server, when the proxy let us through
    code: int | None  # close code when refused
    reason: str


def open_ws(url: str, *, cookie: str | None = None, origin: str | None = PORTAL_ORIGIN) -> ClientConnection:
    headers = {"Cookie": cookie} if cookie else {}
    return connect(url, origin=origin, additional_headers=headers, subprotocols=["binary"], open_timeout=10,
                   close_timeout=5)  # type: ignore[arg-type, list-item]


def attempt(url: str, *, cookie: str | None = None, origin: str | None = PORTAL_ORIGIN) -> Outcome:
    """Open, read the first message (RFB banner) or the close frame, close."""
    said = ""
    with open_ws(url, cookie=cookie, origin=origin) as ws:
        while True:
            try:
                data = ws.recv(timeout=10)
            except ConnectionClosed as closed:
                rcvd = closed.rcvd
                return Outcome(banner=None, code=rcvd.code if rcvd else None,
                               reason=(rcvd.reason if rcvd else "") or said)
            if isinstance(data, str) and data.startswith('{"type": "closed"'):
                said = json.loads(data)["reason"]  # the text console says why before closing (daphne drops it)
                continue
            return Outcome(banner=data if isinstance(data, bytes) else data.encode(), code=None, reason="")
