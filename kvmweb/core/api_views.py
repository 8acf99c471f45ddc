"""The API's own pages: ``/api/v1/`` lists its endpoints (read from the URL configuration, so it never drifts from
what is served) and ``/api/docs/`` shows Swagger UI inside the portal's page (navigation and all)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .handlers import error_page

API_ROOT = "api/v1/"
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_NOT_LISTED = {"options", "head", "trace"}


def _methods(callback: Any) -> list[str]:
    """The HTTP methods a view answers (its class's handlers), OPTIONS and HEAD left out."""
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:
        return []
    return [m.upper() for m in cls.http_method_names if m not in _NOT_LISTED and hasattr(cls, m)]


def _summary(callback: Any) -> str:
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    doc = (getattr(cls, "__doc__", None) or "").strip()
    return doc.split("\n\n", 1)[0].replace("\n", " ") if doc else ""


def _walk(patterns: Iterable[Any], route: str, namespace: str) -> Iterable[dict[str, Any]]:
    for p in patterns:
        full = route + str(p.pattern)
        if isinstance(p, URLResolver):
            if API_ROOT.startswith(full) or full.startswith(API_ROOT):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                yield from _walk(p.url_patterns, full, ns)
        elif isinstance(p, URLPattern) and full.startswith(API_ROOT) and full != API_ROOT:
            yield {
                "path": "/" + _CONVERTER.sub(r"{\1}", full),
                "name": f"{namespace}{p.name}" if p.name else "",
                "methods": _methods(p.callback),
                "summary": _summary(p.callback),
            }


def api_endpoints() -> list[dict[str, Any]]:
    """Every endpoint under /api/v1/ in the URL configuration: path (``{arg}`` for its arguments), URL name,
    methods, and the first paragraph of its view's docstring."""
    return sorted(_walk(get_resolver().url_patterns, "", ""), key=lambda e: e["path"])


class ApiIndexApi(APIView):
    """The API's endpoints, from the URL configuration (JSON, a browser's visit too)."""

    renderer_classes = [JSONRenderer]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response({
            "name": "kvmweb API",
            "version": "1",
            "docs": reverse("api-docs"),
            "schema": reverse("schema"),
            "endpoints": api_endpoints(),
        })


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI in the portal's own page (templates/api_docs.html extends base.html), started by
    static/js/api-docs.js: no inline script. A visitor who is not logged in gets the portal's 403 page."""

    template_name = "api_docs.html"

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.PermissionDenied)):
            return error_page(self.request, 403, detail="Log in to read the API's documentation.")
        return super().handle_exception(exc)
