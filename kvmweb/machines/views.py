"""Pages for VMs: thin; reads come from selectors, changes from services, errors become messages."""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb.accounts.selectors import quota_summary
from kvmweb.core.errors import ServiceError, error_reply
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hypervisor import DomainState, HypervisorError

from . import services
from .api import parse_filters
from .forms import DeleteForm
from .selectors import vm_detail, vm_get, vm_list, vm_rows_sized


@login_required
@require_GET
def vm_list_view(request: HttpRequest) -> HttpResponse:
    try:
        filters = parse_filters(request.GET)
    except ServiceError as exc:
        messages.error(request, exc.detail)
        filters = {"name": "", "state": "", "host_id": None}
    result = vm_list(actor=request.user, sizes=False, **filters)
    page = Paginator(result.rows, settings.KVMWEB_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = vm_rows_sized(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page, "result": result, "filters": filters, "states": list(DomainState),
        "hosts": host_queryset(), "query": query.urlencode(),
    }
    if request.headers.get("HX-Request"):
        return render(request, "machines/_table.html", context)
    context["quota"] = quota_summary(request.user)
    return render(request, "machines/list.html", context)


@login_required
@require_GET
def vm_detail_view(request: HttpRequest, uuid: str) -> HttpResponse:
    detail = vm_detail(actor=request.user, uuid=uuid)
    return render(request, "machines/detail.html", {"d": detail, "info": detail.info, "vm": detail.record})


_ACTIONS: dict[str, tuple[Callable[..., None], str]] = {
    "start": (services.vm_start, "{name} is starting."),
    "shutdown": (services.vm_shutdown, "Shutdown requested: {name} powers off when its operating system agrees."),
    "reboot": (services.vm_reboot, "Reboot requested for {name}."),
    "force-off": (services.vm_force_off, "{name} was forced off."),
    "autostart-on": (lambda **kw: services.vm_set_autostart(enabled=True, **kw), "Autostart is on for {name}."),
    "autostart-off": (lambda **kw: services.vm_set_autostart(enabled=False, **kw), "Autostart is off for {name}."),
}
ACTION_NAMES = tuple(_ACTIONS)


def _fail(request: HttpRequest, exc: Exception) -> None:
    reply = error_reply(exc)
    if reply is None:
        raise exc
    messages.error(request, reply.detail)


@login_required
@require_POST
def vm_action_view(request: HttpRequest, uuid: str, action: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid)
    fn, done = _ACTIONS[action]
    try:
        fn(actor=request.user, vm=vm)
        messages.success(request, done.format(name=vm.name))
    except (ServiceError, HypervisorError) as exc:
        _fail(request, exc)
    return redirect("machines:detail", uuid=vm.uuid)


@login_required
@require_http_methods(["GET", "POST"])
def vm_delete_view(request: HttpRequest, uuid: str) -> HttpResponse:
    detail = vm_detail(actor=request.user, uuid=uuid)
    vm = detail.record
    form = DeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            result = services.vm_delete(actor=request.user, vm=vm, delete_volumes=form.cleaned_data["delete_volumes"])
        except (ServiceError, HypervisorError) as exc:
            _fail(request, exc)
        else:
            text = f"{vm.name} was deleted."
            if result.deleted_volumes:
                text += " Deleted volumes: " + ", ".join(result.deleted_volumes) + "."
            if result.kept:
                text += " Kept: " + ", ".join(result.kept) + "."
            messages.success(request, text)
            for failure in result.failed:
                messages.warning(request, f"Could not delete {failure}")
            return redirect(reverse("machines:list"))
    return render(request, "machines/delete.html", {"d": detail, "vm": vm, "info": detail.info, "form": form})
