"""Console pages: the graphical console in its own window, the text console, the screenshot thumbnail."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from kvmweb.core.csp import csp_allow
from kvmweb.core.errors import ServiceError, error_reply
from kvmweb.hypervisor import HypervisorError

from .selectors import console_info, console_screenshot


@login_required
@require_GET
def console_view(request: HttpRequest, uuid: str) -> HttpResponse:
    info = console_info(actor=request.user, uuid=uuid)
    return render(request, "console/console.html", {"c": info, "vm": info.vm})


@login_required
@require_GET
# xterm.js writes its own <style> elements and style attributes (colours, the cell grid): styles only, scripts
# stay 'self'.
@csp_allow({"style-src-elem": ["'self'", "'unsafe-inline'"], "style-src-attr": ["'unsafe-inline'"]})
def text_console_view(request: HttpRequest, uuid: str) -> HttpResponse:
    info = console_info(actor=request.user, uuid=uuid)
    return render(request, "console/text.html", {"c": info, "vm": info.vm})


@login_required
@require_GET
@never_cache
def screenshot_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """The VM's screen as a PNG; ``?thumb=...`` (the VM list's thumbnails) may answer with one a few seconds old."""
    max_age = settings.KVMWEB_THUMBNAIL_SECONDS if "thumb" in request.GET else 0
    try:
        png = console_screenshot(actor=request.user, uuid=uuid, max_age=max_age)
    except (ServiceError, HypervisorError) as exc:
        reply = error_reply(exc)
        if reply is None or reply.status == 404:
            raise  # the middleware renders the page; an <img> only needs the status
        return HttpResponse(reply.detail, status=reply.status, content_type="text/plain; charset=utf-8")
    return HttpResponse(png, content_type="image/png")
