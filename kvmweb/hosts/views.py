"""Hosts pages (staff): the list with the portal's SSH key, adding a host (its key confirmed first), a host's page,
removing a host. Thin: reads from selectors, changes through services."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb.access.permissions import require_staff
from kvmweb.core.views import run_service

from . import services
from .forms import HostAddForm
from .identity import HostKey
from .selectors import host_any, host_page, host_status_list, portal_key


def staff_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 for anyone but staff, before anything else (the method too) is looked at."""
    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        require_staff(request.user, "manage hosts")
        return view(request, *args, **kwargs)
    return checked


@login_required
@staff_only
@require_GET
def host_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "hosts/list.html", {"statuses": host_status_list(count=True),
                                               "key": portal_key(actor=request.user), "form": HostAddForm()})


@login_required
@staff_only
@require_http_methods(["GET", "POST"])
def host_add_view(request: HttpRequest) -> HttpResponse:
    """Step 1: name and URI; an SSH host answers with its key's fingerprint to confirm. Step 2: the same with the
    fingerprint: the key is pinned, the connection tested, the host saved."""
    form = HostAddForm(request.POST or None)
    confirm: HostKey | None = None
    if request.method == "POST" and form.is_valid():
        def add() -> services.HostResult | None:
            nonlocal confirm
            try:
                return services.host_add(actor=request.user, **form.cleaned_data)
            except services.HostKeyToConfirm as asked:
                confirm = asked.key
                if form.cleaned_data["host_key_fingerprint"]:  # the host shows another key than the one confirmed
                    messages.warning(request, asked.detail)
                return None

        result = run_service(request, add, form=form)
        if result is not None:
            return redirect("hosts:detail", pk=result.host.pk)
        if confirm is not None:
            form = HostAddForm(initial={**form.cleaned_data, "host_key_fingerprint": confirm.fingerprint})
    return render(request, "hosts/add.html", {"form": form, "confirm": confirm, "key": portal_key(actor=request.user)})


@login_required
@staff_only
@require_GET
def host_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "hosts/detail.html", {"p": host_page(actor=request.user, host_id=pk)})


@login_required
@staff_only
@require_POST
def host_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    host = host_any(pk)
    if run_service(request, lambda: services.host_remove(actor=request.user, host=host)) is None:
        return redirect("hosts:detail", pk=pk)
    return redirect("hosts:list")
