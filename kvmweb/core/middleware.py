"""Turns our errors that escape a page view into the portal's error page with the right status (never a 500); under
/api/ into the API's JSON (core.handlers, the same answers as Django's error handlers)."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .errors import error_reply
from .handlers import error_response


class HypervisorErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        reply = error_reply(exception)
        if reply is None:
            return None
        return error_response(request, reply.status, detail=reply.detail, code=reply.code, fields=reply.fields)
