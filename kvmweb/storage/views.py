"""Storage pages: thin. Reads come from selectors, changes from services; errors become messages."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import VmAction, is_staff, role_abilities, vm_role
from kvmweb.core.api import stream_response
from kvmweb.core.views import run_service, submit
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.machines.selectors import vm_get, vm_state

from . import clone, selectors, services
from .models import PoolAccess
from .forms import (
    BootOrderForm,
    CdromAddForm,
    CdromForm,
    CloneForm,
    DiskAttachForm,
    DiskBusForm,
    DiskResizeForm,
    DiskTargetForm,
    PoolAccessForm,
    PoolDefineForm,
    PoolDeleteForm,
    ResizeForm,
    VolumeCreateForm,
)


# ---------------------------------------------------------------------------------------------- pools
def _staff_host(request: HttpRequest, host_id: int) -> Host:
    """Pool management is for staff: anyone else gets a 403 page before anything is looked at."""
    host = selectors.host_get(actor=request.user, host_id=host_id)
    services.staff_only(request.user)
    return host


@login_required
@require_GET
def storage_index_view(request: HttpRequest) -> HttpResponse:
    hosts: list[tuple[Host, list[selectors.PoolRow], str | None]] = []
    for host in host_queryset():
        try:
            hosts.append((host, selectors.pool_list(actor=request.user, host=host), None))
        except hv.HypervisorError as exc:
            hosts.append((host, [], exc.detail))
    return render(request, "storage/index.html", {"hosts": hosts, "define_form": PoolDefineForm()})


@login_required
@require_POST
def pool_define_view(request: HttpRequest, host_id: int) -> HttpResponse:
    host = _staff_host(request, host_id)
    submit(request, PoolDefineForm, lambda f: services.pool_define(
        actor=request.user, host=host, name=f.cleaned_data["name"], path=f.cleaned_data["path"],
        autostart=f.cleaned_data["autostart"]), lambda info: f"Pool {info.name} is defined and running "
                                                           f"({info.target_path}).")
    return redirect("storage:index")


@login_required
@require_GET
def pool_detail_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    host = selectors.host_get(actor=request.user, host_id=host_id)
    info = selectors.pool_get(actor=request.user, host=host, name=name)
    rows = selectors.volume_list(actor=request.user, host=host, pool=name)
    access = PoolAccess.objects.filter(host=host, pool=name).first()
    context = {
        "host": host, "pool": info, "volumes": rows, "create_form": VolumeCreateForm(), "resize_form": ResizeForm(),
        "staff": is_staff(request.user), "delete_form": PoolDeleteForm(),
        "access_form": PoolAccessForm(initial={"everyone": access.everyone if access else False,
                                               "users": list(access.users.all()) if access else []}),
    }
    return render(request, "storage/pool.html", context)


_POOL_ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "start": (services.pool_start, "Pool {name} started."),
    "stop": (services.pool_stop, "Pool {name} stopped; its files stay."),
    "refresh": (services.pool_refresh, "Pool {name} rescanned."),
    "autostart-on": (lambda **kw: services.pool_set_autostart(enabled=True, **kw), "Autostart is on for {name}."),
    "autostart-off": (lambda **kw: services.pool_set_autostart(enabled=False, **kw), "Autostart is off for {name}."),
}
POOL_ACTIONS = tuple(_POOL_ACTIONS)


@login_required
@require_POST
def pool_action_view(request: HttpRequest, host_id: int, name: str, action: str) -> HttpResponse:
    host = _staff_host(request, host_id)
    selectors.pool_get(actor=request.user, host=host, name=name)  # 404 before anything else
    fn, done = _POOL_ACTIONS[action]
    run_service(request, lambda: fn(actor=request.user, host=host, name=name), success=done.format(name=name))
    return redirect("storage:pool", host_id=host.pk, name=name)


@login_required
@require_POST
def pool_delete_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    host = _staff_host(request, host_id)
    selectors.pool_get(actor=request.user, host=host, name=name)  # 404 before anything else
    form = PoolDeleteForm(request.POST)
    form.is_valid()
    result = run_service(
        request,
        lambda: services.pool_delete(actor=request.user, host=host, name=name,
                                     delete_volumes=form.cleaned_data.get("delete_volumes", False)),
        success=lambda r: f"Pool {name} was deleted" + (f" with {len(r.deleted_volumes)} volume(s)"
                                                        if r.deleted_volumes else "") + ".",
    )
    if result is None:
        return redirect("storage:pool", host_id=host.pk, name=name)
    return redirect("storage:index")


@login_required
@require_POST
def pool_access_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    host = _staff_host(request, host_id)
    selectors.pool_get(actor=request.user, host=host, name=name)  # 404 before anything else
    submit(request, PoolAccessForm, lambda f: services.pool_set_access(
        actor=request.user, host=host, name=name, everyone=f.cleaned_data["everyone"], users=f.cleaned_data["users"]),
        f"Access to pool {name} updated.")
    return redirect("storage:pool", host_id=host.pk, name=name)


# ---------------------------------------------------------------------------------------------- volumes
@login_required
@require_POST
def volume_create_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    host = selectors.host_get(actor=request.user, host_id=host_id)
    selectors.pool_get(actor=request.user, host=host, name=name)  # not open to you: 404
    submit(request, VolumeCreateForm, lambda f: services.volume_create(
        actor=request.user, host=host, pool=name, name=f.cleaned_data["name"], size=f.cleaned_data["size"],
        fmt=f.cleaned_data["format"]), lambda info: f"Volume {info.name} created ({info.format}).")
    return redirect("storage:pool", host_id=host.pk, name=name)


@login_required
@require_POST
def volume_resize_view(request: HttpRequest, host_id: int, name: str, volume: str) -> HttpResponse:
    host = selectors.host_get(actor=request.user, host_id=host_id)
    selectors.volume_get(actor=request.user, host=host, pool=name, name=volume)  # not yours: 404
    submit(request, ResizeForm, lambda f: services.volume_resize(
        actor=request.user, host=host, pool=name, name=volume, size=f.cleaned_data["size"]), lambda r: r.message)
    return redirect("storage:pool", host_id=host.pk, name=name)


@login_required
@require_POST
def volume_delete_view(request: HttpRequest, host_id: int, name: str, volume: str) -> HttpResponse:
    host = selectors.host_get(actor=request.user, host_id=host_id)
    selectors.volume_get(actor=request.user, host=host, pool=name, name=volume)  # not yours: 404
    run_service(request, lambda: services.volume_delete(actor=request.user, host=host, pool=name, name=volume),
                success=f"Volume {volume} deleted.")
    return redirect("storage:pool", host_id=host.pk, name=name)


@login_required
@require_GET
def volume_download_view(request: HttpRequest, host_id: int, name: str, volume: str) -> StreamingHttpResponse:
    host = selectors.host_get(actor=request.user, host_id=host_id)
    info, chunks = services.volume_download(actor=request.user, host=host, pool=name, name=volume)
    return stream_response(request, chunks, filename=info.name, length=info.physical or None)


# ---------------------------------------------------------------------------------------------- a VM's disks
@login_required
@require_GET
def vm_disks_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """The VM page's disks section (loaded by htmx), with the forms that change them."""
    vm = vm_get(actor=request.user, uuid=uuid)
    may = role_abilities(vm_role(request.user, vm))
    disks = selectors.vm_disks(actor=request.user, vm=vm, choices=may["operate"])  # a viewer chooses nothing
    boot = disks.boot + ["", "", ""]
    context = {
        "vm": vm, "disks": disks, "resize_form": DiskResizeForm(), "may": may,
        "boot_form": BootOrderForm(initial={"first": boot[0] or "hd", "second": boot[1], "third": boot[2]}),
        "buses": list(hv.DISK_BUSES), "cdrom_buses": list(hv.CDROM_BUSES),
    }
    template = "storage/_vm_disks.html" if request.headers.get("HX-Request") else "storage/vm_disks.html"
    return render(request, template, context)


def _vm_op(form_class: type[forms.Form], run: Callable[..., Any],  # type: ignore[no-untyped-def]
           action: VmAction = VmAction.MANAGE):
    """A POST that changes a VM's drives: a role below ``action`` is refused (403) before the form is read."""
    @login_required
    @require_POST
    def view(request: HttpRequest, uuid: str) -> HttpResponse:
        vm = vm_get(actor=request.user, uuid=uuid, action=action)
        submit(request, form_class, lambda form: run(request.user, vm, form))
        return redirect(reverse("machines:detail", kwargs={"uuid": vm.uuid}) + "#vm-disks")

    return view


def _attach(actor: Any, vm: Any, form: DiskAttachForm) -> services.DiskResult:
    data = form.cleaned_data
    if data["new"]:
        return services.disk_attach_new(actor=actor, vm=vm, pool=data["pool"], name=data["volume"],
                                        size=data["size"], fmt=data["format"], bus=data["bus"])
    pool, _, volume = data["volume"].partition("/") if "/" in data["volume"] else (data["pool"], "", data["volume"])
    return services.disk_attach_existing(actor=actor, vm=vm, pool=pool, name=volume, bus=data["bus"])


def _medium_choice(iso: str) -> dict[str, Any]:
    """The medium a CD-ROM form chose: ``lib:<id>`` (the ISO library) or ``pool/volume``."""
    if iso.startswith("lib:") and iso[4:].isdigit():
        return {"iso_id": int(iso[4:])}
    pool, _, name = iso.partition("/")
    return {"pool": pool, "name": name}


def _cdrom(actor: Any, vm: Any, form: CdromForm) -> services.DiskResult:
    target, iso = form.cleaned_data["target"], form.cleaned_data["iso"]
    if not iso:
        return services.cdrom_eject(actor=actor, vm=vm, target=target)
    return services.cdrom_insert(actor=actor, vm=vm, target=target, **_medium_choice(iso))


def _cdrom_add(actor: Any, vm: Any, form: CdromAddForm) -> services.DriveChange:
    iso = form.cleaned_data["iso"]
    return services.cdrom_add(actor=actor, vm=vm, bus=form.cleaned_data["bus"], **(_medium_choice(iso) if iso else {}))


vm_disk_attach_view = _vm_op(DiskAttachForm, _attach)
vm_disk_detach_view = _vm_op(
    DiskTargetForm, lambda a, vm, f: services.disk_detach(actor=a, vm=vm, target=f.cleaned_data["target"]))
vm_disk_resize_view = _vm_op(
    DiskResizeForm, lambda a, vm, f: services.disk_resize(actor=a, vm=vm, target=f.cleaned_data["target"],
                                                          size=f.cleaned_data["size"]))
vm_disk_bus_view = _vm_op(
    DiskBusForm, lambda a, vm, f: services.disk_set_bus(actor=a, vm=vm, target=f.cleaned_data["target"],
                                                        bus=f.cleaned_data["bus"]))
vm_cdrom_view = _vm_op(CdromForm, _cdrom, VmAction.OPERATE)  # changing media: operator
vm_cdrom_add_view = _vm_op(CdromAddForm, _cdrom_add)
vm_cdrom_remove_view = _vm_op(
    DiskTargetForm, lambda a, vm, f: services.cdrom_remove(actor=a, vm=vm, target=f.cleaned_data["target"]))
vm_boot_order_view = _vm_op(
    BootOrderForm, lambda a, vm, f: services.boot_order_set(actor=a, vm=vm, order=f.order()))


@login_required
@require_http_methods(["GET", "POST"])
def vm_clone_view(request: HttpRequest, uuid: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
    form = CloneForm(request.POST or None, initial={"name": clone.clone_suggest_name(vm.host, vm.name)})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        job = run_service(request, lambda: clone.vm_clone(
            actor=request.user, vm=vm, name=data["name"], mode=data["mode"], pause_source=data["pause_source"]),
            form=form, success=f"Cloning {vm.name} → {data['name']}: follow the job below.")
        if job is not None:
            return redirect("jobs:detail", pk=job.pk)
    return render(request, "storage/clone.html", {"vm": vm, "form": form, "state": vm_state(vm)})
