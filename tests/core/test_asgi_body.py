"""Fast: the web process's Django handler (kvmweb/core/asgi.py) hands the raw body of an upload's piece to the view
as it arrives, with a bounded buffer, and every other request as Django does (spooled first)."""
from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.exceptions import RequestAborted
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from kvmweb.core.asgi import BodyStream, StreamedBodyHandler

seen: dict[str, Any] = {}


@csrf_exempt
def digest(request: HttpRequest) -> HttpResponse:
    """Reads the body in 1000-byte reads, as an upload's view does."""
    seen["stream"] = type(request._stream).__name__  # type: ignore[attr-defined]
    sha, reads = hashlib.sha256(), 0
    while data := request.read(1000):
        sha.update(data)
        reads += 1
    return JsonResponse({"sha": sha.hexdigest(), "reads": reads})


urlpatterns = [path("digest/", digest)]


def _scope(method: str, ctype: bytes, length: int) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/digest/", "raw_path": b"/digest/", "query_string": b"",
            "root_path": "", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5000),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", ctype), (b"content-length", str(length).encode())]}


async def _call(method: str, ctype: bytes, parts: list[bytes], *, disconnect: bool = False) -> dict[str, Any]:
    app = ApplicationCommunicator(StreamedBodyHandler(), _scope(method, ctype, sum(map(len, parts))))
    for i, part in enumerate(parts):
        await app.send_input({"type": "http.request", "body": part, "more_body": i < len(parts) - 1 or disconnect})
    if disconnect:
        await app.send_input({"type": "http.disconnect"})
        await app.wait(5)
        return {}
    start = await app.receive_output(5)
    body = await app.receive_output(5)
    await app.wait(5)
    return {"status": start["status"], **({} if start["status"] >= 400 else json.loads(body["body"]))}


@override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["127.0.0.1"])
@pytest.mark.parametrize("ctype, stream", [(b"application/octet-stream", "BodyStream"),
                                           (b"application/json", "SpooledTemporaryFile")])
def test_a_raw_put_streams_and_others_are_spooled(ctype: bytes, stream: str) -> None:
    parts = [bytes([i]) * (700 + i) for i in range(20)]
    seen.clear()
    answer = asyncio.run(_call("PUT", ctype, parts))
    assert answer["status"] == 200 and answer["sha"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert seen["stream"] == stream
    assert answer["reads"] == -(-sum(map(len, parts)) // 1000)  # full reads, fewer only at the end


def test_a_client_gone_mid_body_aborts_the_read() -> None:
    """The read fails (the view's upload aborts its libvirt stream: no short piece is stored), and Django hears
    of the disconnect."""

    async def main() -> tuple[BaseException | None, dict[str, Any]]:
        messages = [{"type": "http.request", "body": b"x" * 500, "more_body": True}, {"type": "http.disconnect"}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        body = BodyStream(receive)
        try:
            await asyncio.to_thread(body.read, 1000)
        except RequestAborted as exc:
            return exc, await body()
        return None, await body()

    error, heard = asyncio.run(main())
    assert isinstance(error, RequestAborted) and heard == {"type": "http.disconnect"}


def test_the_buffer_stops_taking_messages_when_full() -> None:
    """The body is taken from the server no faster than the view reads it, beyond the buffer's limit."""

    async def main() -> tuple[int, int, bytes]:
        taken = 0

        async def receive() -> dict[str, Any]:
            nonlocal taken
            taken += 1
            return {"type": "http.request", "body": b"%03d" % (taken - 1) + b"." * 97, "more_body": taken < 50}

        body = BodyStream(receive, limit=1000)
        for _ in range(100):  # let the loop run the buffer's task as far as it goes
            await asyncio.sleep(0)
        before = taken  # nobody read yet: at most the limit was taken
        data = await asyncio.to_thread(body.read, -1)
        return before, taken, data

    before, taken, data = asyncio.run(main())
    assert before == 10 and taken == 50
    assert data == b"".join(b"%03d" % i + b"." * 97 for i in range(50))
