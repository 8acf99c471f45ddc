"""API plumbing shared by every app: errors as ``{"error": code, "detail": message}``."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, StreamingHttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import PayloadTooLargeError, ValidationError, error_reply

MIB = 1024 * 1024
# The most one request may carry: a big file goes in pieces. The pages send pieces this large. Django's view reads a
# piece as it arrives (core/asgi.py), but daphne holds a request's body whole before passing it on.
MAX_PIECE = 16 * MIB
_DIGITS = re.compile(r"[0-9]{1,20}")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    reply = error_reply(exc)
    if reply is not None:
        body: dict[str, Any] = {"error": reply.code, "detail": reply.detail}
        if reply.fields:
            body["fields"] = reply.fields
        return Response(body, status=reply.status)
    if isinstance(exc, Http404):
        return Response({"error": "not_found", "detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "invalid", "detail": "The request has invalid fields.", "fields": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "error": codes if isinstance(codes, str) else "error",
            "detail": str(exc.detail),
        }
    return response


def request_chunks(request: HttpRequest, length: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The first ``length`` bytes of a raw request body, at most ``chunk`` bytes at a time: an upload is never held whole
    in memory. Stops early if the client sends less."""
    left = length
    while left > 0:
        data = request.read(min(chunk, left))
        if not data:
            break
        left -= len(data)
        yield data


def piece_length(request: HttpRequest, *, limit: int = MAX_PIECE) -> int:
    """The Content-Length of a request that carries one piece of a file: digits, above zero, at most ``limit``.

    Checked before anything is read: 400 without a usable length, 413 for a piece above the limit."""
    raw = str(request.META.get("CONTENT_LENGTH") or "").strip()
    if not _DIGITS.fullmatch(raw) or int(raw) <= 0:
        raise ValidationError("Send the piece's bytes as the request body, with a Content-Length above zero.",
                              fields={"Content-Length": ["a number of bytes above zero"]})
    length = int(raw)
    if length > limit:
        raise PayloadTooLargeError(
            f"Send at most {limit // MIB} MiB per request; larger files go in pieces: start the upload, then PUT "
            "each piece (in order) at ?offset=<bytes sent so far>.",
            fields={"Content-Length": [f"at most {limit} bytes"]})
    return length


def byte_offset(value: str | None, *, name: str = "offset") -> int:
    """A query parameter that gives a position in a file, in bytes (0 or more); 400 otherwise."""
    raw = (value or "").strip()
    if not _DIGITS.fullmatch(raw):
        raise ValidationError(f"Give ?{name}=<bytes already sent> (0 or more).", fields={name: ["a number of bytes"]})
    return int(raw)


def stream_response(request: HttpRequest, chunks: Iterator[bytes], *, filename: str,
                    length: int | None) -> StreamingHttpResponse:
    """A download that never sits whole in memory: under ASGI the libvirt stream is read chunk by chunk in a
    worker thread (Django would otherwise collect a sync iterator into a list first)."""
    content: Iterator[bytes] | AsyncIterator[bytes]
    if isinstance(request, ASGIRequest):
        async def pump() -> AsyncIterator[bytes]:
            step = sync_to_async(lambda: next(chunks, b""), thread_sensitive=False)
            try:
                while data := await step():
                    yield data
            finally:
                await sync_to_async(chunks.close, thread_sensitive=False)()  # type: ignore[attr-defined]
        content = pump()
    else:
        content = chunks
    response = StreamingHttpResponse(content, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    if length is not None:
        response["Content-Length"] = str(length)
    return response
