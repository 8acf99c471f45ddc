"""The ISO library page: the list, a streamed upload with a progress bar (static/media/upload.js), register and
delete forms. Thin: every change goes through the services."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from kvmweb.access.permissions import is_staff, require_staff
from kvmweb.core.errors import PermissionDeniedError
from kvmweb.core.views import run_service
from kvmweb.hosts.selectors import host_queryset

from . import services
from .selectors import iso_get, iso_list, iso_users


class RegisterForm(forms.Form):
    host = forms.ModelChoiceField(queryset=host_queryset(), empty_label=None)
    path = forms.CharField(max_length=1024, help_text="A file already on the host, e.g. /srv/isos/debian.iso")
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the file's name")
    mode = forms.ChoiceField(choices=[("register", "Register in place"), ("copy", "Copy into the ISO pool")],
                             initial="register",
                             help_text="In place: the file stays where it is. Copy: the library keeps its own copy.")


@login_required
@require_GET
def iso_list_view(request: HttpRequest) -> HttpResponse:
    hosts = list(host_queryset())
    users = {h.pk: iso_users(h, actor=request.user) for h in hosts}
    rows = [(iso, users.get(iso.host_id, {}).get(iso.path), None if iso.complete else services.iso_job(iso))
            for iso in iso_list(actor=request.user)]
    return render(request, "media/list.html", {
        "rows": rows, "hosts": hosts, "can_upload": services.can_upload(request.user),
        "register_form": RegisterForm() if is_staff(request.user) else None,
    })


@login_required
@require_POST
def iso_register_view(request: HttpRequest) -> HttpResponse:
    require_staff(request.user, "can register files already on a host")
    form = RegisterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a host, a path and a mode.")
        return redirect("media:list")
    result = run_service(request, lambda: services.iso_import(actor=request.user, **form.cleaned_data),
                         success=lambda r: f"{r[0].name}: the job checks the file and adds it to the ISO library "
                                           f"of {r[0].host}.")
    if result is None:
        return redirect("media:list")
    return redirect("jobs:detail", pk=result[1].pk)


@login_required
@require_POST
def iso_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    iso = iso_get(actor=request.user, pk=pk)
    if not services.can_change(request.user, iso):
        raise PermissionDeniedError("Only staff or the person who added a medium may delete it.")
    run_service(request, lambda: services.iso_delete(actor=request.user, iso=iso),
                success=f"{iso.name} was removed from the ISO library.")
    return redirect("media:list")
