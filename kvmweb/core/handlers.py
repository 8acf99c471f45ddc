"""The portal's error answers, in one place: a page for people (templates/error.html, which extends base.html: the
portal's navigation, a sentence, a way back), JSON for programs under ``/api/`` (``{"error", "detail"}``, the API's
own shape). Django's ``handler400/403/404/500`` (urls.py) and the middleware that turns our errors into answers
(core.middleware) both come here, so a 404 or a 503 looks the same wherever it comes from."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string

log = logging.getLogger(__name__)
API_PREFIX = "/api/"


@dataclass(frozen=True)
class Words:
    title: str  # the page's heading
    detail: str  # the sentence, unless the error brings its own
    code: str  # the API's "error"


WORDS: dict[int, Words] = {
    400: Words("Bad request", "The portal could not understand that request.", "bad_request"),
    403: Words("Not allowed", "You may not open this page or do this.", "permission_denied"),
    404: Words("Page not found", "There is nothing at this address: the link may be wrong, or what it showed was "
                                 "deleted.", "not_found"),
    409: Words("That did not work", "The request conflicts with the current state.", "conflict"),
    413: Words("Too large", "The request is larger than the portal accepts at once.", "too_large"),
    500: Words("Something went wrong", "The portal failed to answer this request. The error was logged: try "
                                       "again, and tell staff if it happens again.", "server_error"),
    503: Words("Not available right now", "Something the portal needs for this (a libvirt host, the job queue) "
                                          "does not answer: nothing was done. Try again in a moment.", "unavailable"),
}
OTHER = Words("That did not work", "The request could not be done.", "error")
# Headings for errors whose code says more than their status.
TITLES = {"host_unavailable": "The host does not answer", "queue_unavailable": "The job queue does not answer"}


def is_api(request: HttpRequest) -> bool:
    return str(request.path).startswith(API_PREFIX)


def error_response(request: HttpRequest, status: int, *, detail: str = "", code: str = "",
                   fields: dict[str, list[str]] | None = None) -> HttpResponse:
    """The answer for an error with ``status``: JSON under /api/, else the portal's error page."""
    words = WORDS.get(status, OTHER)
    if is_api(request):
        body: dict[str, object] = {"error": code or words.code, "detail": detail or words.detail}
        if fields:
            body["fields"] = fields
        return JsonResponse(body, status=status)
    return error_page(request, status, detail=detail, code=code)


def error_page(request: HttpRequest, status: int, *, detail: str = "", code: str = "") -> HttpResponse:
    """The portal's error page for ``status`` (HTML wherever the request went)."""
    words = WORDS.get(status, OTHER)
    context = {"status": status, "title": TITLES.get(code, words.title), "detail": detail or words.detail,
               "path": request.path}
    try:
        return render(request, "error.html", context, status=status)
    except Exception:
        if status != 500:
            raise
        # The request's own context failed too (its session, the database...): the page without it.
        log.exception("the error page could not use the request's context")
        return HttpResponse(render_to_string("error.html", context), status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = ""
    if is_api(request):
        detail = f"Nothing answers at {request.path}. GET {API_PREFIX}v1/ lists the API's endpoints."
    return error_response(request, 404, detail=detail)


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500)
