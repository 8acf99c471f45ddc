"""The landing page (``/``): thin; every read comes from :mod:`.selectors`. Its parts are re-read by
``static/dashboard/dashboard.js`` when events say they changed (``vm``, ``job``, ``stats``), each rendered by the
template the page includes, from the same reads."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from kvmweb.access.permissions import is_staff

from .selectors import host_cards, my_quota, my_vms, recent_jobs

# part → its template; the page includes the same templates
PARTS = {"hosts": "dashboard/_hosts.html", "vms": "dashboard/_vms.html", "quota": "dashboard/_quota.html",
         "jobs": "dashboard/_jobs.html"}


def _context(request: HttpRequest, *parts: str) -> dict[str, Any]:
    actor = request.user
    context: dict[str, Any] = {}
    if "hosts" in parts:
        context["cards"] = host_cards(actor=actor)  # staff only: a 403 for anyone else
    if "vms" in parts:
        context["vms"] = my_vms(actor=actor)
    if "quota" in parts:
        context["quota"] = my_quota(actor=actor)
    if "jobs" in parts:
        context["jobs"] = recent_jobs(actor=actor)
    return context


@login_required
@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    parts = ("hosts", "vms", "jobs") if is_staff(request.user) else ("vms", "quota", "jobs")
    return render(request, "dashboard/dashboard.html", _context(request, *parts))


@login_required
@require_GET
def dashboard_part_view(request: HttpRequest, part: str) -> HttpResponse:
    return render(request, PARTS[part], _context(request, part))
