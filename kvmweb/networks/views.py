"""Pages for networks and VM NICs: thin; reads from selectors, changes through services, errors become messages."""
from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb.access.permissions import VmAction, is_staff, require_staff, role_abilities, vm_role
from kvmweb.core.views import form_invalid_messages, run_service
from kvmweb.hosts.selectors import host_queryset
from kvmweb.machines.selectors import vm_get

from . import services
from .forms import NetworkForm, NicForm, NicTargetForm
from .selectors import network_detail, network_list, network_row, vm_nics


def _host_filter(request: HttpRequest) -> int | None:
    value = request.GET.get("host", "")
    return int(value) if value.isdigit() else None


@login_required
@require_GET
def network_list_view(request: HttpRequest) -> HttpResponse:
    host_id = _host_filter(request)
    result = network_list(actor=request.user, host_id=host_id)
    return render(request, "networks/list.html", {
        "result": result, "hosts": host_queryset(), "host_id": host_id, "staff": is_staff(request.user),
    })


@login_required
@require_http_methods(["GET", "POST"])
def network_new_view(request: HttpRequest) -> HttpResponse:
    require_staff(request.user, "can define networks")
    form = NetworkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        host = form.cleaned_data["host"]
        result = run_service(request, lambda: services.network_define(
            actor=request.user, host=host, spec=form.spec(), allow_users=form.cleaned_data["allow_users"]),
            form=form)
        if result is not None:
            return redirect("networks:detail", host_id=host.pk, name=result.name)
    return render(request, "networks/new.html", {"form": form})


@login_required
@require_GET
def network_detail_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    detail = network_detail(actor=request.user, host_id=host_id, name=name)
    return render(request, "networks/detail.html", {
        "d": detail, "row": detail.row, "info": detail.info, "spec": detail.row.spec, "staff": is_staff(request.user),
    })


_ACTIONS: dict[str, Callable[..., services.NetworkResult]] = {
    "start": services.network_start,
    "stop": services.network_stop,
    "autostart-on": lambda **kw: services.network_set_autostart(enabled=True, **kw),
    "autostart-off": lambda **kw: services.network_set_autostart(enabled=False, **kw),
    "allow": lambda **kw: services.network_set_allowed(allowed=True, **kw),
    "disallow": lambda **kw: services.network_set_allowed(allowed=False, **kw),
}
ACTION_NAMES = tuple(_ACTIONS)


def _staff_network(request: HttpRequest, host_id: int, name: str):  # type: ignore[no-untyped-def]
    """403 for non-staff, 404 for a network that does not exist, before anything is done."""
    require_staff(request.user, "can manage networks")
    return network_row(actor=request.user, host_id=host_id, name=name).host


@login_required
@require_POST
def network_action_view(request: HttpRequest, host_id: int, name: str, action: str) -> HttpResponse:
    host = _staff_network(request, host_id, name)
    run_service(request, lambda: _ACTIONS[action](actor=request.user, host=host, name=name))
    return redirect("networks:detail", host_id=host.pk, name=name)


@login_required
@require_POST
def network_delete_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    host = _staff_network(request, host_id, name)
    if run_service(request, lambda: services.network_delete(actor=request.user, host=host, name=name)) is None:
        return redirect("networks:detail", host_id=host.pk, name=name)
    return redirect("networks:list")


# ------------------------------------------------------------------------------------------------ VM NICs
@login_required
@require_GET
def vm_nics_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """The NIC section of a VM's page (loaded by htmx; also a page of its own without JavaScript)."""
    vm = vm_get(actor=request.user, uuid=uuid)
    nics = vm_nics(actor=request.user, vm=vm)
    form = NicForm(networks=[n.name for n in nics.networks])
    template = "networks/_nics.html" if request.headers.get("HX-Request") else "networks/nics.html"
    return render(request, template, {"vm": vm, "n": nics, "form": form,
                                      "may": role_abilities(vm_role(request.user, vm))})


@login_required
@require_POST
def vm_nic_add_view(request: HttpRequest, uuid: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
    form = NicForm(request.POST, networks=[request.POST.get("network", "")])
    if form.is_valid():
        run_service(request, lambda: services.nic_attach(
            actor=request.user, vm=vm, network=form.cleaned_data["network"], model=form.cleaned_data["model"],
            mac=form.cleaned_data["mac"] or None))
    else:
        form_invalid_messages(request, form)
    return redirect("machines:detail", uuid=vm.uuid)


def _nic_change(request: HttpRequest, uuid: str, change: Callable[..., services.NicResult]) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
    form = NicTargetForm(request.POST)
    if form.is_valid():
        run_service(request, lambda: change(actor=request.user, vm=vm, mac=form.cleaned_data["mac"]))
    else:
        form_invalid_messages(request, form)
    return redirect("machines:detail", uuid=vm.uuid)


@login_required
@require_POST
def vm_nic_remove_view(request: HttpRequest, uuid: str) -> HttpResponse:
    return _nic_change(request, uuid, services.nic_detach)


@login_required
@require_POST
def vm_nic_link_view(request: HttpRequest, uuid: str, state: str) -> HttpResponse:
    return _nic_change(request, uuid, lambda **kw: services.nic_set_link(up=state == "up", **kw))
