"""The "New VM" wizard page: thin; the service validates and creates, the VM page shows the job's progress."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from kvmweb.core.views import run_service
from kvmweb.hosts.selectors import host_queryset

from .forms import CreateFromTemplateForm, CreateVmForm
from .selectors import template_queryset
from .services import vm_create


@login_required
@require_http_methods(["GET", "POST"])
def vm_create_view(request: HttpRequest) -> HttpResponse:
    hosts = host_queryset()
    host_id = request.POST.get("host") or request.GET.get("host") or ""
    template_id = request.GET.get("template") or ""
    chosen = template_queryset(request.user).filter(pk=template_id).first() if template_id.isdigit() else None
    if chosen is not None and not host_id:
        host_id = str(chosen.image.host_id)
    host = hosts.filter(pk=host_id).first() if str(host_id).isdigit() else hosts.first()
    source = request.POST.get("source") or request.GET.get("source") or ("template" if chosen else "iso")
    form: CreateVmForm | CreateFromTemplateForm
    if source == "template":
        form = CreateFromTemplateForm(request.POST or None, actor=request.user, host=host,
                                      initial={"template": str(chosen.pk)} if chosen else None)
    else:
        form = CreateVmForm(request.POST or None, actor=request.user, host=host)
    if request.method == "POST" and form.is_valid():
        # No message: the VM page's Overview shows the create job itself, live, for as long as it runs.
        result = run_service(request, lambda: vm_create(actor=request.user, **form.service_fields()), form=form,
                             success="")
        if result is not None:
            return redirect("machines:detail", uuid=result.vm.uuid)
    return render(request, "provisioning/create.html", {"form": form, "host": host, "source": source})
