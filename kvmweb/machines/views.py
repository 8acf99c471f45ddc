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
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kvmweb.access.permissions import SHARE_ROLES, VmAction, role_abilities, role_check
from kvmweb.accounts.selectors import quota_summary
from kvmweb.core.errors import ServiceError
from kvmweb.core.views import run_service, submit
from kvmweb.hosts.selectors import host_queryset
from kvmweb.jobs.selectors import jobs_unfinished_by_target
from kvmweb.hypervisor import DomainState, HostUnavailable

from . import services
from .models import VirtualMachine
from .forms import DeleteForm, ShareForm, ShareRoleForm, parse_filters
from .selectors import (
    ActivityFilters, VmList, activity_actions, activity_list, activity_vm_choices, parse_activity_filters,
    vm_activity, vm_detail, vm_get, vm_list, vm_share_hint, vm_shares,
)
from .selectors import GUEST_RETRY_SECONDS, vm_guest_info

from .shutdown import vm_shutdown_deadline

# The list's bulk actions, in the order the toolbar shows them (each is a service of services.BULK_ACTIONS).
BULK_LABELS = [("start", "Start"), ("shutdown", "Shut down"), ("reboot", "Reboot"), ("force-off", "Force off")]

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
        filters = {"name": "", "state": "", "host_id": None, "sort": "name"}
    result, pager = vm_list_page(actor=request.user, filters=filters, page=request.GET.get("page"),
                                 size=settings.KVMWEB_PAGE_SIZE)
    services.vm_records_sync(result.drift)
    query = request.GET.copy()
    query.pop("page", None)
    unsorted = query.copy()
    unsorted.pop("sort", None)
    doing = jobs_unfinished_by_target(actor=request.user, target_type="vm", targets=[r.uuid for r in result.rows])
    context = {
        "rows": result.rows, "lines": [(row, doing.get(row.uuid)) for row in result.rows], "pager": pager,
        "result": result, "filters": filters, "states": list(DomainState),
        "hosts": host_queryset(), "query": query.urlencode(), "here": request.get_full_path(),
        "unsorted": unsorted.urlencode(),
        "thumbnail_seconds": settings.KVMWEB_THUMBNAIL_SECONDS, "bulk_actions": BULK_LABELS,
    }
    if request.headers.get("HX-Request"):
        return render(request, "machines/_table.html", context)
    context["quota"] = quota_summary(request.user)
    return render(request, "machines/list.html", context)


def _page_context(request: HttpRequest, uuid: str, *, share_form: ShareForm | None = None) -> dict[str, object]:
    detail = vm_detail(actor=request.user, uuid=uuid)
    vm = detail.record
    may = role_abilities(detail.role)
    return {"d": detail, "info": detail.info, "vm": vm, "may": may,
            "activity": vm_activity(actor=request.user, vm=vm),
            "shares": vm_shares(actor=request.user, vm=vm) if may["share"] else [],
            "share_hint": vm_share_hint(actor=request.user, vm=vm),
            "share_form": share_form or ShareForm(), "share_roles": SHARE_ROLES,
            "shutdown_timeout": settings.KVMWEB_SHUTDOWN_TIMEOUT}


@login_required
@require_GET
def vm_detail_view(request: HttpRequest, uuid: str) -> HttpResponse:
    try:
        return render(request, "machines/detail.html", _page_context(request, uuid))
    except HostUnavailable as exc:  # the VM's host does not answer: say so, with what the portal knows of it
        return render(request, "machines/unavailable.html", {"vm": vm_get(actor=request.user, uuid=uuid),
                                                             "why": exc.detail})


# The VM page's parts, re-read by the page when the VM changes (static/events/events.js): each is rendered by the
# same template the page includes, from the same reads.
PARTS = {"header": "machines/_header.html", "overview": "machines/_overview.html", "activity": "machines/_activity.html",
         "advanced": "machines/_advanced.html", "console": "console/_vm_section.html",
         "sharing": "machines/_sharing.html"}
# "guest" (what the guest agent says) is not in the page as rendered: events.js loads it after the page (lazy), so
# the page never waits for an agent that does not answer.
PARTS["guest"] = "machines/_guest.html"


@login_required
@require_GET
def vm_part_view(request: HttpRequest, uuid: str, part: str) -> HttpResponse:
    if part == "guest":
        vm = vm_get(actor=request.user, uuid=uuid)
        return render(request, PARTS[part], {"vm": vm, "guest": vm_guest_info(actor=request.user, vm=vm),
                                             "guest_seconds": settings.KVMWEB_GUEST_INFO_SECONDS,
                                             "retry_seconds": GUEST_RETRY_SECONDS})
    return render(request, PARTS[part], _page_context(request, uuid))


_ACTIONS: dict[str, Callable[..., services.VmActionResult]] = {
    "start": services.vm_start,
    "shutdown": services.vm_shutdown,
    "reboot": services.vm_reboot,
    "force-off": services.vm_force_off,
    "autostart-on": lambda **kw: services.vm_set_autostart(enabled=True, **kw),
    "autostart-off": lambda **kw: services.vm_set_autostart(enabled=False, **kw),
}
ACTION_NAMES = tuple(_ACTIONS)


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Where an action's form asked to go back to (a page of this site, e.g. the list with its filters), else
    ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return redirect(target)
    return redirect(default)


@login_required
@require_POST
def vm_action_view(request: HttpRequest, uuid: str, action: str) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.OPERATE)
    if action == "shutdown" and request.POST.get("deadline"):  # "then force off after N s": a job
        run_service(request, lambda: vm_shutdown_deadline(actor=request.user, vm=vm,
                                                          force_after=request.POST.get("force_after")))
    else:
        run_service(request, lambda: _ACTIONS[action](actor=request.user, vm=vm))
    return _back(request, reverse("machines:detail", kwargs={"uuid": vm.uuid}))


@login_required
@require_POST
def vm_bulk_view(request: HttpRequest) -> HttpResponse:
    """One action on the VMs ticked in the list: a message per VM."""
    result = run_service(request, lambda: services.vm_bulk(
        actor=request.user, action=request.POST.get("action", ""), uuids=request.POST.getlist("uuid")))
    if result is not None:
        for item in result.items:
            (messages.success if item.ok else messages.error)(request, f"{item.name or item.uuid}: {item.message}")
    return _back(request, reverse("machines:list"))


# ------------------------------------------------------------------------------------------------ sharing
def _sharing(vm: VirtualMachine) -> HttpResponse:
    return redirect(reverse("machines:detail", kwargs={"uuid": vm.uuid}) + "#vm-sharing")


@login_required
@require_POST
def vm_share_add_view(request: HttpRequest, uuid: str) -> HttpResponse:
    """Share the VM with a user or a group, or change the role of a share it has. A refusal re-renders the page
    with the form's errors on its fields."""
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.SHARE)
    form = ShareForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if run_service(request, lambda: services.vm_share(actor=request.user, vm=vm, user=data["user"] or None,
                                                          group=data["group"] or None, role=data["role"]),
                       form=form) is not None:
            return _sharing(vm)
    return render(request, "machines/detail.html", _page_context(request, uuid, share_form=form), status=400)


@login_required
@require_POST
def vm_share_change_view(request: HttpRequest, uuid: str, pk: int) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.SHARE)
    submit(request, ShareRoleForm, lambda f: services.vm_share_update(actor=request.user, vm=vm, share_id=pk,
                                                                     role=f.cleaned_data["role"]))
    return _sharing(vm)


@login_required
@require_POST
def vm_share_remove_view(request: HttpRequest, uuid: str, pk: int) -> HttpResponse:
    vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.SHARE)
    run_service(request, lambda: services.vm_unshare(actor=request.user, vm=vm, share_id=pk))
    return _sharing(vm)


@login_required
@require_http_methods(["GET", "POST"])
def vm_delete_view(request: HttpRequest, uuid: str) -> HttpResponse:
    detail = vm_detail(actor=request.user, uuid=uuid)
    vm = detail.record
    role_check(detail.role, VmAction.DELETE)  # a role below owner: 403 before the form
    form = DeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = run_service(request, lambda: services.vm_delete(
            actor=request.user, vm=vm, delete_volumes=form.cleaned_data["delete_volumes"]))
        if result is not None:
            for failure in result.failed:
                messages.warning(request, f"Could not delete {failure}")
            return redirect(reverse("machines:list"))
    return render(request, "machines/delete.html", {"d": detail, "vm": vm, "info": detail.info, "form": form})


# ------------------------------------------------------------------------------------------------ activity
@login_required
@require_GET
def activity_view(request: HttpRequest) -> HttpResponse:
    """Who did what: the audit entries of the VMs the reader may see and their own actions (staff: all), filtered
    and paginated."""
    try:
        filters = parse_activity_filters(request.GET)
    except ServiceError as exc:
        messages.error(request, exc.detail)
        filters = ActivityFilters()
    entries = activity_list(actor=request.user, filters=filters)
    page = Paginator(entries, settings.KVMWEB_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "machines/activity.html", {
        "page": page, "filters": filters, "query": query.urlencode(), "raw": request.GET,
        "vms": activity_vm_choices(actor=request.user), "actions": activity_actions(),
    })
