from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .selectors import host_status_list


@staff_member_required
@require_GET
def host_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "hosts/list.html", {"statuses": host_status_list()})
