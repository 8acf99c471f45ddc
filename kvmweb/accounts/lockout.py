"""The login lockout's two questions (django-axes asks them; settings ``AXES_*``): who is the client, and until
when is a (user name, client) pair locked out."""
from __future__ import annotations

import datetime as dt

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the connection's, or behind the TLS reverse proxy (``KVMWEB_BEHIND_TLS_PROXY``) the
    last ``X-Forwarded-For`` address, the one the proxy itself added (those before it are the client's word)."""
    if getattr(settings, "KVMWEB_BEHIND_TLS_PROXY", False):
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if forwarded:
            return str(forwarded[-1])
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


def lockout_until(*, username: str, ip_address: str | None) -> dt.datetime | None:
    """When the lockout of ``username`` from ``ip_address`` ends: the cool-off after their latest failure."""
    latest = (AccessAttempt.objects.filter(username=username, ip_address=ip_address)
              .order_by("-attempt_time").values_list("attempt_time", flat=True).first())
    cool_off = get_cool_off()
    if latest is None or cool_off is None:
        return None
    until: dt.datetime = latest + cool_off
    return until
