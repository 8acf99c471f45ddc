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
from kvmweb.core.errors import ServiceError
from kvmweb.core.views import run_service
from kvmweb.hosts.selectors import host_queryset
from kvmweb.hypervisor import DomainState

from . import services
from .forms import DeleteForm, parse_filters
from .selectors import VmList, vm_detail, vm_get, vm_list

def vm_list_page(*, actor: object, filters: dict[str, object], page: str | None, size: int) -> tuple[VmList, object]:
    """One page of the list (the last one when ``page`` is past the end) and its paginator page."""
    number = int(page) if page and page.isdigit() and int(page) > 0 else 1
    result = vm_list(actor=actor, offset=(number - 1) * size, limit=size, **filters)  # type: ignore[arg-type]
    pager = Paginator(range(result.total), size).get_page(number)
    if pager.number != number:  # asked past the end: show the last page
        result = vm_list(actor=actor, offset=(pager.number - 1) * size, limit=size, **filters)  # type: ignore[arg-type]
    return result, pager


@login_required
@require_GET
def vm_list_view(request: HttpRequest) -> HttpResponse:
    try:
        filters = parse_filters(request.GET)
    except ServiceError as exc:
        messages.error(request, exc.detail)
        filters = {"name": "", "state": "", "host_id": None}
    result, pager = vm_list_page(actor=request.user, filters=filters, page=request.GET.get("page"),
                                 size=settings.KVMWEB_PAGE_SIZE)
    services.vm_records_sync(result.drift)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "rows": result.rows, "pager": pager, "result": result, "filters": filters, "states": list(DomainState),
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


_ACTIONS: dict[str, Callable[..., services.VmActionResult]] = {
    "start": services.vm_start,
    "shutdown": services.vm_shutdown,
    "reboot": services.vm_reboot,
    "force-off": services.vm_force_off,
    "autostart-on": lambda **kw: services.vm_set_autostart(enabled=True, **kw),
    "autostart-off": lambda **kw: services.vm_set_autostart(enabled=False, **kw),
}
ACTION_NAMES = tuple(_ACTIONS)


@login_required
@require_POST
def vm_action_view(request: HttpRequest, uuid: str, action: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid)
    run_service(request, lambda: _ACTIONS[action](actor=request.user, vm=vm))
    return redirect("machines:detail", uuid=vm.uuid)


@login_required
@require_http_methods(["GET", "POST"])
def vm_delete_view(request: HttpRequest, uuid: str) -> HttpResponse:
    detail = vm_detail(actor=request.user, uuid=uuid)
    vm = detail.record
    form = DeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = run_service(request, lambda: services.vm_delete(
            actor=request.user, vm=vm, delete_volumes=form.cleaned_data["delete_volumes"]))
        if result is not None:
            for failure in result.failed:
                messages.warning(request, f"Could not delete {failure}")
            return redirect(reverse("machines:list"))
    return render(request, "machines/delete.html", {"d": detail, "vm": vm, "info": detail.info, "form": form})
