"""REST API for VMs: thin, every change goes through the same services as the pages."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.core.errors import ValidationError
from kvmweb.hypervisor import DomainState

from . import services
from .selectors import vm_detail, vm_domain, vm_get, vm_list, vm_rows_sized
from .serializers import (
    ActionResultSerializer,
    AutostartSerializer,
    DeleteResultSerializer,
    VmDetailSerializer,
    VmSummarySerializer,
)

STATES = [s.slug for s in DomainState]


def parse_filters(params: Any) -> dict[str, Any]:
    """name/state/host query filters, validated (shared by the page and the API)."""
    state = params.get("state", "") or ""
    if state and state not in STATES:
        raise ValidationError(f"Unknown state {state!r}; use one of {', '.join(STATES)}.",
                              fields={"state": [f"one of {', '.join(STATES)}"]})
    host = params.get("host", "") or ""
    if host and not str(host).isdigit():
        raise ValidationError("host must be a host id.", fields={"host": ["a host id"]})
    return {"name": params.get("name", "") or "", "state": state, "host_id": int(host) if host else None}


class VmListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, description="part of the name"),
            OpenApiParameter("state", str, enum=STATES),
            OpenApiParameter("host", int, description="host id"),
            OpenApiParameter("limit", int), OpenApiParameter("offset", int),
        ],
        responses=VmSummarySerializer(many=True),
        summary="List VMs (virsh list --all)",
    )
    def get(self, request: Request) -> Response:
        result = vm_list(actor=request.user, sizes=False, **parse_filters(request.query_params))
        paginator = LimitOffsetPagination()
        page = vm_rows_sized(paginator.paginate_queryset(result.rows, request, view=self) or [])
        unavailable = [{"host": h.name, "detail": d} for h, d in result.unavailable]
        response = paginator.get_paginated_response([VmSummarySerializer.from_row(r) for r in page])
        response.data["unavailable_hosts"] = unavailable
        return response


class VmDetailApi(APIView):
    @extend_schema(responses=VmDetailSerializer, summary="VM info (virsh dominfo, domblklist, vncdisplay)")
    def get(self, request: Request, uuid: str) -> Response:
        return Response(VmDetailSerializer.from_detail(vm_detail(actor=request.user, uuid=uuid)))

    @extend_schema(
        parameters=[OpenApiParameter("delete_volumes", bool, description="also delete its disk volumes")],
        responses=DeleteResultSerializer,
        summary="Delete a shut-off VM (virsh undefine [--remove-all-storage])",
    )
    def delete(self, request: Request, uuid: str) -> Response:
        flag = str(request.query_params.get("delete_volumes", "false")).lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ValidationError("delete_volumes must be true or false.")
        vm = vm_get(actor=request.user, uuid=uuid)
        result = services.vm_delete(actor=request.user, vm=vm, delete_volumes=flag in ("true", "1", "yes"))
        return Response(vars(result))


def _action(fn: Callable[..., None], summary: str, done: str) -> type[APIView]:
    class ActionApi(APIView):
        @extend_schema(request=None, responses=ActionResultSerializer, summary=summary)
        def post(self, request: Request, uuid: str) -> Response:
            vm = vm_get(actor=request.user, uuid=uuid)
            fn(actor=request.user, vm=vm)
            return Response({"detail": done.format(name=vm.name), "state": vm_domain(vm).state().slug})

    ActionApi.__name__ = f"Vm{fn.__name__.title().replace('_', '')}Api"
    return ActionApi


VmStartApi = _action(services.vm_start, "Start (virsh start)", "{name} started.")
VmShutdownApi = _action(
    services.vm_shutdown, "Graceful shutdown (virsh shutdown)",
    "Shutdown requested: {name} powers off when its operating system agrees.",
)
VmRebootApi = _action(services.vm_reboot, "Reboot (virsh reboot)", "Reboot requested for {name}.")
VmForceOffApi = _action(services.vm_force_off, "Force off (virsh destroy)", "{name} forced off.")


class VmAutostartApi(APIView):
    @extend_schema(request=AutostartSerializer, responses=ActionResultSerializer,
                   summary="Autostart on/off (virsh autostart [--disable])")
    def post(self, request: Request, uuid: str) -> Response:
        body = AutostartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        vm = vm_get(actor=request.user, uuid=uuid)
        enabled = body.validated_data["enabled"]
        services.vm_set_autostart(actor=request.user, vm=vm, enabled=enabled)
        return Response({"detail": f"Autostart {'on' if enabled else 'off'} for {vm.name}.",
                         "state": vm_domain(vm).state().slug})


