"""The Origin rule shared by the console proxy and the portal's own websockets. Kept apart from the proxy so that
the web process does not import websockify (and numpy) just for it."""
from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings
from django.http.request import split_domain_port, validate_host


def origin_allowed(origin: str | None) -> bool:
    """Same rule as the portal's own websockets: the Origin's host must be an allowed host, or the whole origin
    must be a trusted origin (CSRF_TRUSTED_ORIGINS, e.g. the public https URL behind a reverse proxy)."""
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlparse(origin)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return False
    domain, _port = split_domain_port(parsed.netloc)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)
