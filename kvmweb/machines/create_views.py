"""The "New VM" wizard page: thin; the service validates and creates, the VM page shows the job's progress."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from kvmweb.core.errors import ServiceError
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hypervisor import HypervisorError

from .create_forms import CreateVmForm
from .provisioning import vm_create

_FORM_FIELDS = {"os_variant_id": "os_variant"}


@login_required
@require_http_methods(["GET", "POST"])
def vm_create_view(request: HttpRequest) -> HttpResponse:
    hosts = host_queryset()
    host_id = request.POST.get("host") or request.GET.get("host") or ""
    host = hosts.filter(pk=host_id).first() if str(host_id).isdigit() else hosts.first()
    form = CreateVmForm(request.POST or None, actor=request.user, host=host)
    if request.method == "POST" and form.is_valid():
        try:
            vm, job = vm_create(actor=request.user, **form.service_fields())
        except ServiceError as exc:
            placed = False
            for field, errors in exc.fields.items():
                name = _FORM_FIELDS.get(field, field)
                if name in form.fields:
                    for error in errors:
                        form.add_error(name, error)
                    placed = True
            if not placed:
                form.add_error(None, exc.detail)
        except HypervisorError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, f"{vm.name} is being created (job #{job.pk}): watch its progress below.")
            return redirect("machines:detail", uuid=vm.uuid)
    return render(request, "machines/create.html", {"form": form, "host": host})
