"""The templates page (/templates/): the templates open to the reader and the flavors; staff forms to add, change,
publish and delete them; "Make a template" of a VM. Thin: reads from selectors, changes through ``catalog.py``."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb.access.permissions import VmAction, is_staff, require_staff
from kvmweb.core.views import run_service
from kvmweb.machines.selectors import vm_get, vm_state

from . import catalog
from .catalog_forms import FlavorForm, FromVmForm, TemplateForm
from .selectors import flavor_get, flavor_list, template_get, template_list


@login_required
@require_GET
def template_list_view(request: HttpRequest) -> HttpResponse:
    templates = [(t, catalog.template_may_change(request.user, t)) for t in template_list(actor=request.user)]
    return render(request, "provisioning/templates.html", {
        "templates": templates, "flavors": flavor_list(), "staff": is_staff(request.user),
    })


@login_required
@require_http_methods(["GET", "POST"])
def template_new_view(request: HttpRequest) -> HttpResponse:
    require_staff(request.user, "can make templates")
    form = TemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if run_service(request, lambda: catalog.template_create(actor=request.user, **form.service_fields()),
                       form=form) is not None:
            return redirect("templates:list")
    return render(request, "provisioning/template_form.html", {"form": form, "template": None})


@login_required
@require_http_methods(["GET", "POST"])
def template_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    template = template_get(actor=request.user, pk=pk)
    catalog.template_check_change(request.user, template)
    form = TemplateForm(request.POST, template=template) if request.method == "POST" else TemplateForm.of(template)
    if request.method == "POST" and form.is_valid():
        if run_service(request, lambda: catalog.template_update(actor=request.user, template=template,
                                                                **form.service_fields()), form=form) is not None:
            return redirect("templates:list")
    return render(request, "provisioning/template_form.html", {"form": form, "template": template})


@login_required
@require_POST
def template_publish_view(request: HttpRequest, pk: int, public: bool) -> HttpResponse:
    template = template_get(actor=request.user, pk=pk)
    run_service(request, lambda: catalog.template_publish(actor=request.user, template=template, public=public))
    return redirect("templates:list")


@login_required
@require_POST
def template_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    template = template_get(actor=request.user, pk=pk)
    run_service(request, lambda: catalog.template_delete(actor=request.user, template=template))
    return redirect("templates:list")


@login_required
@require_http_methods(["GET", "POST"])
def template_from_vm_view(request: HttpRequest, uuid: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
    form = FromVmForm(request.POST or None, initial={"name": f"{vm.name[:50]}-tpl"})
    if request.method == "POST" and form.is_valid():
        result = run_service(request, lambda: catalog.template_from_vm(actor=request.user, vm=vm,
                                                                       **form.cleaned_data), form=form)
        if result is not None:
            return redirect("jobs:detail", pk=result.job.pk)
    return render(request, "provisioning/from_vm.html", {"vm": vm, "form": form, "state": vm_state(vm)})


# ------------------------------------------------------------------------------------------------ flavors
@login_required
@require_http_methods(["GET", "POST"])
def flavor_new_view(request: HttpRequest) -> HttpResponse:
    require_staff(request.user, "can define flavors")
    form = FlavorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if run_service(request, lambda: catalog.flavor_create(actor=request.user, **form.cleaned_data),
                       form=form) is not None:
            return redirect("templates:list")
    return render(request, "provisioning/flavor_form.html", {"form": form, "flavor": None})


@login_required
@require_http_methods(["GET", "POST"])
def flavor_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_staff(request.user, "can change flavors")
    flavor = flavor_get(pk)
    form = FlavorForm(request.POST) if request.method == "POST" else FlavorForm.of(flavor)
    if request.method == "POST" and form.is_valid():
        if run_service(request, lambda: catalog.flavor_update(actor=request.user, flavor=flavor,
                                                              **form.cleaned_data), form=form) is not None:
            return redirect("templates:list")
    return render(request, "provisioning/flavor_form.html", {"form": form, "flavor": flavor})


@login_required
@require_POST
def flavor_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    require_staff(request.user, "can delete flavors")
    flavor = flavor_get(pk)
    run_service(request, lambda: catalog.flavor_delete(actor=request.user, flavor=flavor))
    return redirect("templates:list")
