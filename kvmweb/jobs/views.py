"""Pages for jobs: the list (filters) and one job with its live log and progress bar."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from kvmweb.core.errors import ServiceError
from kvmweb.core.views import run_service

from . import services
from .models import Job
from .selectors import job_get, job_kinds, job_list, parse_job_filters


@login_required
@require_GET
def job_list_view(request: HttpRequest) -> HttpResponse:
    try:
        filters = parse_job_filters(request.GET)
    except ServiceError as exc:
        messages.error(request, exc.detail)
        filters = {"state": "", "kind": "", "target": "", "mine": ""}
    page = Paginator(job_list(actor=request.user, **filters), settings.KVMWEB_PAGE_SIZE).get_page(
        request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "jobs/list.html", {
        "page": page, "filters": filters, "states": Job.State.choices, "kinds": job_kinds(),
        "query": query.urlencode(),
    })


@login_required
@require_GET
def job_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = job_get(actor=request.user, pk=pk)
    return render(request, "jobs/detail.html", {"job": job, "lines": job.lines.all()})


@login_required
@require_POST
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = job_get(actor=request.user, pk=pk)
    run_service(request, lambda: services.job_cancel(actor=request.user, job=job),
                success=f"Job #{job.pk}: cancel requested.")
    return redirect("jobs:detail", pk=job.pk)
