"""Pages of the fleet app: the VM page's "Move to another host" part and a host's maintenance and evacuate
buttons (the host page includes templates/fleet/_host_section.html). Thin: selectors and services do the work."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from kvmweb.access.permissions import require_migrate
from kvmweb.core.errors import ServiceError
from kvmweb.core.views import run_service, submit
from kvmweb.hosts.models import Host
from kvmweb.jobs.models import Job
from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.selectors import vm_get

from . import maintenance, migration, selectors


class MoveForm(forms.Form):
    host = forms.CharField(required=False)  # a host's id, or "any"
    copy_storage = forms.BooleanField(required=False)


class MaintenanceForm(forms.Form):
    maintenance = forms.BooleanField(required=False)


def _may_move(request: HttpRequest, vm: VirtualMachine) -> bool:
    try:
        require_migrate(request.user, vm, by_owners=settings.KVMWEB_MIGRATION_BY_OWNERS)
    except ServiceError:
        return False
    return True


@login_required
@require_GET
def vm_move_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """The VM page's "Move to another host" part (re-read live)."""
    vm = vm_get(actor=request.user, uuid=uuid)
    section = selectors.move_section(actor=request.user, vm=vm, may=_may_move(request, vm))
    return render(request, "fleet/_vm_move.html", {"vm": vm, "move": section})


def _queued(job: Job) -> str:
    return f"{job.title}: job #{job.pk} queued; its progress is below."


@login_required
@require_POST
def vm_move_post_view(request: HttpRequest, uuid: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid)
    require_migrate(request.user, vm, by_owners=settings.KVMWEB_MIGRATION_BY_OWNERS)  # 403 before the form is read
    submit(request, MoveForm, lambda form: migration.vm_migrate(
        actor=request.user, vm=vm, dest_host=selectors.host_choice(form.cleaned_data["host"]),
        copy_storage=form.cleaned_data["copy_storage"]), success=_queued)
    return redirect(reverse("machines:detail", kwargs={"uuid": vm.uuid}) + "#vm-move")


def _host_page(host: Host) -> str:
    return reverse("hosts:detail", kwargs={"pk": host.pk}) + f"#host-fleet-{host.pk}"


@staff_member_required
@require_POST
def host_maintenance_view(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    submit(request, MaintenanceForm, lambda form: maintenance.host_maintenance_set(
        actor=request.user, host=host, on=form.cleaned_data["maintenance"]))
    return redirect(_host_page(host))


@staff_member_required
@require_POST
def host_evacuate_view(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    run_service(request, lambda: maintenance.host_evacuate(actor=request.user, host=host),
                success=lambda job: f"{job.title}: job #{job.pk} queued.")
    return redirect(_host_page(host))


urls: list[URLPattern] = [
    path("vms/<uuid:uuid>/move/", vm_move_view, name="vm-move"),
    path("vms/<uuid:uuid>/move/start/", vm_move_post_view, name="vm-move-start"),
    path("hosts/<int:pk>/maintenance/", host_maintenance_view, name="host-maintenance"),
    path("hosts/<int:pk>/evacuate/", host_evacuate_view, name="host-evacuate"),
]
