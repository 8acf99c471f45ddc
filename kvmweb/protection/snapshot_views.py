"""Pages of snapshots: the snapshots section of a VM's page (loaded by htmx) and its forms. Thin: selectors and services
do the work."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from kvmweb.access.permissions import VmAction, role_abilities, vm_role
from kvmweb.core.views import submit
from kvmweb.jobs.models import Job
from kvmweb.machines.selectors import vm_get

from . import selectors, snapshots


class SnapshotCreateForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(max_length=snapshots.DESCRIPTION_MAX, required=False, widget=forms.Textarea)
    memory = forms.BooleanField(required=False)


class SnapshotRevertForm(forms.Form):
    confirm = forms.BooleanField(required=False)


class SnapshotDeleteForm(forms.Form):
    children = forms.BooleanField(required=False)


@login_required
@require_GET
def vm_snapshots_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """The VM page's snapshots section (htmx), or a page of its own without JavaScript."""
    vm = vm_get(actor=request.user, uuid=uuid)
    context = {"vm": vm, "snaps": selectors.snapshot_overview(actor=request.user, vm=vm),
               "may": role_abilities(vm_role(request.user, vm)), "description_max": snapshots.DESCRIPTION_MAX}
    template = "protection/_snapshot_list.html" if request.headers.get("HX-Request") else "protection/snapshots.html"
    return render(request, template, context)


def _queued(job: Job) -> str:
    return f"{job.title}: job #{job.pk} queued; follow it under Jobs & activity."


def _snapshot_op(form_class: type[forms.Form], run: Callable[..., Job]) -> Any:
    """A POST that queues a snapshot job: a role below manager is refused (403) before the form is read."""
    @login_required
    @require_POST
    def view(request: HttpRequest, uuid: str, name: str = "") -> HttpResponse:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        submit(request, form_class, lambda form: run(request.user, vm, name, form.cleaned_data), success=_queued)
        return redirect(reverse("machines:detail", kwargs={"uuid": vm.uuid}) + "#vm-snapshots")

    return view


vm_snapshot_create_view = _snapshot_op(SnapshotCreateForm, lambda actor, vm, _name, data: snapshots.snapshot_create(
    actor=actor, vm=vm, name=data["name"], description=data["description"], memory=data["memory"]))
vm_snapshot_revert_view = _snapshot_op(SnapshotRevertForm, lambda actor, vm, name, data: snapshots.snapshot_revert(
    actor=actor, vm=vm, name=name, confirm=data["confirm"]))
vm_snapshot_delete_view = _snapshot_op(SnapshotDeleteForm, lambda actor, vm, name, data: snapshots.snapshot_delete(
    actor=actor, vm=vm, name=name, children=data["children"]))

VM = "vms/<uuid:uuid>/snapshots/"
urls: list[URLPattern] = [
    path(VM, vm_snapshots_view, name="vm-snapshots"),
    path(VM + "create/", vm_snapshot_create_view, name="vm-snapshot-create"),
    path(VM + "<str:name>/revert/", vm_snapshot_revert_view, name="vm-snapshot-revert"),
    path(VM + "<str:name>/delete/", vm_snapshot_delete_view, name="vm-snapshot-delete"),
]
