"""Pages of backups: the backups section of a VM's page (loaded by htmx) and its forms. Thin: selectors and services
do the work."""
from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from kvmweb.access.permissions import VmAction, role_abilities, vm_role
from kvmweb.core.views import form_invalid_messages, run_service
from kvmweb.machines.selectors import vm_get, vm_state

from . import backups, selectors


class RestoreForm(forms.Form):
    mode = forms.ChoiceField(choices=[("new", "as a new VM"), ("over", "over this VM")])
    name = forms.CharField(max_length=64, required=False)
    pool = forms.CharField(max_length=64, required=False)
    confirm = forms.BooleanField(required=False)


def _back(uuid: object) -> HttpResponse:
    return redirect(reverse("machines:detail", kwargs={"uuid": uuid}) + "#vm-backups")


@login_required
@require_GET
def vm_backups_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """The VM page's backups section (loaded by htmx), with the forms a manager uses."""
    vm = vm_get(actor=request.user, uuid=uuid)
    may = role_abilities(vm_role(request.user, vm))
    rows = selectors.backup_list(actor=request.user, vm=vm)
    context = {"vm": vm, "rows": rows, "may": may, "state": vm_state(vm)}
    template = "protection/_backups.html" if request.headers.get("HX-Request") else "protection/backups.html"
    return render(request, template, context)


@login_required
@require_POST
def vm_backup_create_view(request: HttpRequest, uuid: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
    job = run_service(request, lambda: backups.backup_create(actor=request.user, vm=vm),
                      success=f"Backing up {vm.name}: follow the job below.")
    return redirect("jobs:detail", pk=job.pk) if job is not None else _back(vm.uuid)


@login_required
@require_POST
def backup_restore_view(request: HttpRequest, pk: int) -> HttpResponse:
    backup = selectors.backup_get(actor=request.user, pk=pk, action=VmAction.MANAGE)
    form = RestoreForm(request.POST)
    if not form.is_valid():
        form_invalid_messages(request, form)
        return _back(backup.vm_uuid)
    data = form.cleaned_data
    job = run_service(request, lambda: backups.backup_restore(
        actor=request.user, backup=backup, mode=data["mode"], name=data["name"], pool=data["pool"],
        confirm=data["confirm"]), success=f"Restoring backup #{backup.pk}: follow the job below.")
    return redirect("jobs:detail", pk=job.pk) if job is not None else _back(backup.vm_uuid)


@login_required
@require_POST
def backup_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    backup = selectors.backup_get(actor=request.user, pk=pk, action=VmAction.MANAGE)
    uuid = backup.vm_uuid
    run_service(request, lambda: backups.backup_delete(actor=request.user, backup=backup))
    return _back(uuid)


urls: list[URLPattern] = [
    path("vms/<uuid:uuid>/backups/", vm_backups_view, name="vm-backups"),
    path("vms/<uuid:uuid>/backups/create/", vm_backup_create_view, name="vm-backup-create"),
    path("backups/<int:pk>/restore/", backup_restore_view, name="backup-restore"),
    path("backups/<int:pk>/delete/", backup_delete_view, name="backup-delete"),
]
