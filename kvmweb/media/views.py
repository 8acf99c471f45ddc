"""The media library's pages: the ISO library (``/media-library/``) and the image library
(``/media-library/images/``), one page style: the list, a streamed upload with a progress bar
(static/media/upload.js), register and delete forms; for images, publish/unpublish. Thin: every change goes through
the services."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from .models import IsoImage
from .selectors import image_get, image_list, image_users, iso_get, iso_list, iso_users


class RegisterForm(forms.Form):
    host = forms.ModelChoiceField(queryset=host_queryset(), empty_label=None)
    path = forms.CharField(max_length=1024, help_text="A file already on the host, e.g. /srv/isos/debian.iso")
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the file's name")
    mode = forms.ChoiceField(choices=[("register", "Register in place"), ("copy", "Copy into the ISO pool")],
                             initial="register",
                             help_text="In place: the file stays where it is. Copy: the library keeps its own copy.")


class ImageRegisterForm(RegisterForm):
    path = forms.CharField(max_length=1024, help_text="A disk image already on the host, e.g. "
                                                      "/srv/images/debian-12-genericcloud-amd64.qcow2")
    mode = forms.ChoiceField(choices=[("register", "Register in place"), ("copy", "Copy into the image pool")],
                             initial="register", help_text="Copy: the library keeps its own copy (and of the "
                                                           "kernel and initrd).")
    os_variant = forms.CharField(max_length=64, required=False, label="OS", help_text="osinfo short id, e.g. debian12")
    public = forms.BooleanField(required=False, initial=True, help_text="Offered to every user")
    kernel = forms.CharField(max_length=1024, required=False, help_text="Direct kernel boot: a kernel on the host")
    initrd = forms.CharField(max_length=1024, required=False, help_text="Direct kernel boot: its initrd")
    cmdline = forms.CharField(max_length=1024, required=False, label="Kernel command line",
                              help_text="e.g. root=/dev/vda1 console=ttyS0")


def _library_page(request: HttpRequest, *, template: str, rows: list[IsoImage], users: Callable[..., dict[str, Any]],
                  form: forms.Form) -> HttpResponse:
    by_host: dict[int, dict[str, Any]] = {}
    for host in {row.host for row in rows}:
        by_host[host.pk] = users(host, actor=request.user, paths=[r.path for r in rows if r.host_id == host.pk])
    listed = [(row, by_host.get(row.host_id, {}).get(row.path), None if row.complete else services.iso_job(row))
              for row in rows]
    return render(request, template, {
        "rows": listed, "hosts": list(host_queryset()), "can_upload": services.can_upload(request.user),
        "register_form": form if is_staff(request.user) else None,
    })


@login_required
@require_GET
def iso_list_view(request: HttpRequest) -> HttpResponse:
    return _library_page(request, template="media/list.html", rows=list(iso_list(actor=request.user)),
                         users=lambda host, actor, paths: iso_users(host, actor=actor), form=RegisterForm())


@login_required
@require_GET
def image_list_view(request: HttpRequest) -> HttpResponse:
    return _library_page(request, template="media/images.html", rows=list(image_list(actor=request.user)),
                         users=image_users, form=ImageRegisterForm())


def _register(request: HttpRequest, form: forms.Form, start: Callable[..., Any], lib: services.Library,
              back: str) -> HttpResponse:
    require_staff(request.user, "can register files already on a host")
    if not form.is_valid():
        messages.error(request, "Give a host, a path and a mode.")
        return redirect(back)
    result = run_service(request, lambda: start(actor=request.user, **form.cleaned_data),
                         success=lambda r: f"{r[0].name}: the job checks the file and adds it to the {lib.title} "
                                           f"of {r[0].host}.")
    if result is None:
        return redirect(back)
    return redirect("jobs:detail", pk=result[1].pk)


@login_required
@require_POST
def iso_register_view(request: HttpRequest) -> HttpResponse:
    return _register(request, RegisterForm(request.POST), services.iso_import, services.ISO, "media:list")


@login_required
@require_POST
def image_register_view(request: HttpRequest) -> HttpResponse:
    return _register(request, ImageRegisterForm(request.POST), services.image_import, services.IMAGE,
                     "media:images")


def _delete(request: HttpRequest, row: IsoImage, back: str) -> HttpResponse:
    if not services.can_change(request.user, row):
        raise PermissionDeniedError("Only staff or the person who added it may delete it.")
    run_service(request, lambda: services.iso_delete(actor=request.user, iso=row),
                success=f"{row.name} was removed from the {services.library(row).title}.")
    return redirect(back)


@login_required
@require_POST
def iso_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _delete(request, iso_get(actor=request.user, pk=pk), "media:list")


@login_required
@require_POST
def image_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _delete(request, image_get(actor=request.user, pk=pk), "media:images")


@login_required
@require_POST
def image_publish_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Staff: offer an image to every user (``public=1``) or only to its owner and staff (``public=0``)."""
    image = image_get(actor=request.user, pk=pk)
    require_staff(request.user, "can publish disk images")
    public = request.POST.get("public") == "1"
    run_service(request, lambda: services.image_update(actor=request.user, image=image, public=public),
                success=f"{image.name} is {'offered to every user' if public else 'no longer public'}.")
    return redirect("media:images")
