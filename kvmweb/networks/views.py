"""Pages for networks and VM NICs: thin; reads from selectors, changes through services, errors become messages."""
from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb.core.errors import PermissionDeniedError, ServiceError, error_reply
from kvmweb.hosts.selectors import host_get, host_queryset
from kvmweb.hypervisor import HypervisorError
from kvmweb.machines.selectors import is_staff, vm_get

from . import services
from .forms import NetworkForm, NicForm, NicTargetForm
from .selectors import network_detail, network_list, vm_nics


def _fail(request: HttpRequest, exc: Exception) -> None:
    reply = error_reply(exc)
    if reply is None:
        raise exc
    messages.error(request, reply.detail)


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
    if not is_staff(request.user):
        raise PermissionDeniedError("Only staff can define networks.")
    form = NetworkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        host = form.cleaned_data["host"]
        spec = form.spec()
        try:
            services.network_define(actor=request.user, host=host, spec=spec,
                                    allow_users=form.cleaned_data["allow_users"])
        except (ServiceError, HypervisorError) as exc:
            fields = getattr(exc, "fields", {}) or {}
            for name, msgs in fields.items():
                for msg in msgs:
                    form.add_error(name if name in form.fields else None, msg)
            if not fields:
                form.add_error(None, getattr(exc, "detail", str(exc)))
        else:
            messages.success(request, f"The network {spec.name} is defined (inactive). Start it when ready.")
            return redirect("networks:detail", host_id=host.pk, name=spec.name)
    return render(request, "networks/new.html", {"form": form})


@login_required
@require_GET
def network_detail_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    detail = network_detail(actor=request.user, host_id=host_id, name=name)
    return render(request, "networks/detail.html", {
        "d": detail, "row": detail.row, "info": detail.info, "spec": detail.row.spec, "staff": is_staff(request.user),
    })


def _stop(**kw: object) -> str:
    lost = services.network_stop(**kw)  # type: ignore[arg-type]
    if lost:
        return "{name} is stopped. These running VMs lost connectivity: " + ", ".join(v.name for v in lost) + "."
    return "{name} is stopped."


_ACTIONS: dict[str, Callable[..., str | None]] = {
    "start": lambda **kw: services.network_start(**kw) or "{name} is active.",
    "stop": _stop,
    "autostart-on": lambda **kw: services.network_set_autostart(enabled=True, **kw) or "Autostart is on for {name}.",
    "autostart-off": lambda **kw: services.network_set_autostart(enabled=False, **kw)
    or "Autostart is off for {name}.",
    "allow": lambda **kw: services.network_set_allowed(allowed=True, **kw)
    or "Users may now attach their VMs to {name}.",
    "disallow": lambda **kw: services.network_set_allowed(allowed=False, **kw)
    or "Users may no longer attach VMs to {name} (NICs already attached stay).",
}
ACTION_NAMES = tuple(_ACTIONS)


@login_required
@require_POST
def network_action_view(request: HttpRequest, host_id: int, name: str, action: str) -> HttpResponse:
    host = host_get(host_id)
    try:
        done = _ACTIONS[action](actor=request.user, host=host, name=name)
        messages.success(request, (done or "").format(name=name))
    except (ServiceError, HypervisorError) as exc:
        if getattr(exc, "status", 400) == 404 or not is_staff(request.user):
            raise
        _fail(request, exc)
    return redirect("networks:detail", host_id=host.pk, name=name)


@login_required
@require_POST
def network_delete_view(request: HttpRequest, host_id: int, name: str) -> HttpResponse:
    host = host_get(host_id)
    try:
        services.network_delete(actor=request.user, host=host, name=name)
    except (ServiceError, HypervisorError) as exc:
        if getattr(exc, "status", 400) == 404 or not is_staff(request.user):
            raise
        _fail(request, exc)
        return redirect("networks:detail", host_id=host.pk, name=name)
    messages.success(request, f"The network {name} was deleted.")
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
    return render(request, template, {"vm": vm, "n": nics, "form": form})


@login_required
@require_POST
def vm_nic_add_view(request: HttpRequest, uuid: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid)
    network = request.POST.get("network", "")
    form = NicForm(request.POST, networks=[network])
    if not form.is_valid():
        messages.error(request, "Check the NIC: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("machines:detail", uuid=vm.uuid)
    try:
        result = services.nic_attach(actor=request.user, vm=vm, network=form.cleaned_data["network"],
                                     model=form.cleaned_data["model"], mac=form.cleaned_data["mac"] or None)
    except (ServiceError, HypervisorError) as exc:
        _fail(request, exc)
    else:
        when = "now (hot-plugged)" if result.live else "from its next start"
        messages.success(request, f"{vm.name} has a new NIC {result.nic.mac} on {result.nic.network}, {when}.")
    return redirect("machines:detail", uuid=vm.uuid)


def _nic_change(request: HttpRequest, uuid: str, change: Callable[..., services.NicResult], done: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid)
    form = NicTargetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Which NIC? Its MAC address is missing.")
        return redirect("machines:detail", uuid=vm.uuid)
    try:
        result = change(actor=request.user, vm=vm, mac=form.cleaned_data["mac"])
    except (ServiceError, HypervisorError) as exc:
        _fail(request, exc)
    else:
        text = done.format(mac=result.nic.mac, name=vm.name)
        if result.pending:
            text += (" The guest has not released it yet: it is gone from the configuration and disappears "
                     "from the running VM when the guest lets go of it or powers off.")
        messages.success(request, text)
    return redirect("machines:detail", uuid=vm.uuid)


@login_required
@require_POST
def vm_nic_remove_view(request: HttpRequest, uuid: str) -> HttpResponse:
    return _nic_change(request, uuid, services.nic_detach, "The NIC {mac} was removed from {name}.")


@login_required
@require_POST
def vm_nic_link_view(request: HttpRequest, uuid: str, state: str) -> HttpResponse:
    def change(**kw: object) -> services.NicResult:
        return services.nic_set_link(up=state == "up", **kw)  # type: ignore[arg-type]

    return _nic_change(request, uuid, change, f"The link of {{mac}} is {state}.")
