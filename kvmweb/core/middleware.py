"""Turns our errors that escape a page view into a readable page with the right status (never a 500)."""
from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .errors import error_reply


class HypervisorErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        reply = error_reply(exception)
        if reply is None:
            return None
        return render(request, "error.html", {"reply": reply}, status=reply.status)
