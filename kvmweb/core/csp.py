"""The Content-Security-Policy header (django-csp), with the websocket sources of the request's own host.

The policy itself is in settings (``CONTENT_SECURITY_POLICY`` or ``..._REPORT_ONLY``, chosen by
``KVMWEB_CSP_REPORT_ONLY``): scripts, styles and connections only from the portal itself, no inline script, no eval.
A page's websockets go to the host the browser reached: the events socket on the portal's own address, the console
proxy on its port of the same host name (or ``KVMWEB_CONSOLE_PUBLIC_URL``). Those depend on the request, so this
middleware adds them to ``connect-src`` for each response.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def websocket_sources(request: HttpRequest) -> list[str]:
    """``connect-src`` sources for this request's websockets: the events socket (this host and port) and the console
    proxy (this host name on ``KVMWEB_CONSOLE_PORT``, or the origin of ``KVMWEB_CONSOLE_PUBLIC_URL``)."""
    try:
        host = request.get_host()
    except Exception:  # a disallowed Host header: the response is an error page with no websocket
        return []
    name = host if host.endswith("]") else host.rsplit(":", 1)[0]
    scheme = "wss" if request.is_secure() else "ws"
    sources = [f"{scheme}://{host}", f"{scheme}://{name}:{settings.KVMWEB_CONSOLE_PORT}"]
    public = urlsplit(settings.KVMWEB_CONSOLE_PUBLIC_URL)
    if public.scheme and public.netloc:
        sources.append(f"{public.scheme}://{public.netloc}")
    return sources


class PortalCSPMiddleware(CSPMiddleware):
    """django-csp's middleware; ``connect-src`` also gets :func:`websocket_sources` of the request."""

    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", ()), *websocket_sources(request)]
        parts.update = update
        return parts


def csp_allow(directives: dict[str, list[str]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator that widens the policy (enforced or report-only, whichever is in force) for that view's
    responses only: ``@csp_allow({"style-src-elem": ["'self'", "'unsafe-inline'"]})`` for a page whose library
    injects ``<style>`` elements (xterm.js does). Keep it to styles and sources: scripts stay ``'self'``."""
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            response._csp_update = response._csp_update_ro = directives
            return response
        return wrapped
    return decorator
