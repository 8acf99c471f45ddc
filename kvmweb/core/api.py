"""API plumbing shared by every app: errors as ``{"error": code, "detail": message}``."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import Http404, HttpRequest
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import error_reply


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
    """The first ``length`` bytes of a raw request body, ``chunk`` bytes at a time: an upload is never held whole
    in memory. Stops early if the client sends less."""
    left = length
    while left > 0:
        data = request.read(min(chunk, left))
        if not data:
            break
        left -= len(data)
        yield data
