"""REST API for VMs: thin, every change goes through the same services as the pages (and says the same words)."""
from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, extend_schema
from redis.exceptions import RedisError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.access.permissions import VmAction
from kvmweb.core.errors import ServiceUnavailableError, ValidationError
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.monitoring.selectors import RANGES, vm_series

from . import services, shutdown
from .selectors import SORTS, activity_list, parse_activity_filters, vm_detail, vm_get, vm_list, vm_shares
from .serializers import (
    ActionResultSerializer,
    ActivitySerializer,
    AutostartSerializer,
    BulkResultSerializer,
    BulkSerializer,
    DeleteResultSerializer,
    ShareRoleSerializer,
    ShareSerializer,
    ShutdownSerializer,
    VmDetailSerializer,
    VmStatsSerializer,
    VmSummarySerializer,
)
from .forms import STATES, parse_filters
from .selectors import vm_guest_info
from .serializers import GuestInfoSerializer


class VmListApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, description="part of the name"),
            OpenApiParameter("state", str, enum=STATES),
            OpenApiParameter("host", int, description="host id"),
            OpenApiParameter("sort", str, enum=list(SORTS),
                             description="name (default), or the latest cpu or memory use, highest first"),
            OpenApiParameter("limit", int), OpenApiParameter("offset", int),
        ],
        responses=VmSummarySerializer(many=True),
        summary="List VMs (virsh list --all)",
    )
    def get(self, request: Request) -> Response:
        filters = parse_filters(request.query_params)
        paginator = LimitOffsetPagination()
        paginator.request = request
        paginator.limit = paginator.get_limit(request)
        paginator.offset = paginator.get_offset(request)
        result = vm_list(actor=request.user, offset=paginator.offset, limit=paginator.limit, **filters)  # type: ignore[arg-type]
        services.vm_records_sync(result.drift)
        paginator.count = result.total
        response = paginator.get_paginated_response([VmSummarySerializer.from_row(r) for r in result.rows])
        response.data["unavailable_hosts"] = [{"host": h.name, "detail": d} for h, d in result.unavailable]
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
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.DELETE)
        flag = str(request.query_params.get("delete_volumes", "false")).lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ValidationError("delete_volumes must be true or false.")
        result = services.vm_delete(actor=request.user, vm=vm, delete_volumes=flag in ("true", "1", "yes"))
        return Response({"detail": result.message, "deleted_volumes": result.deleted_volumes, "kept": result.kept,
                         "failed": result.failed})


class VmStatsApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("range", str, enum=list(RANGES), description="how far back (default 1h)")],
        responses=VmStatsSerializer,
        summary="Usage history: CPU, memory, disk and network over the last hour, day or 30 days",
    )
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        span = str(request.query_params.get("range", "1h"))
        if span not in RANGES:
            raise ValidationError(f"Unknown range {span!r}; use one of {', '.join(RANGES)}.",
                                  fields={"range": [f"one of {', '.join(RANGES)}"]})
        try:
            series = vm_series(str(vm.uuid), span)
        except RedisError as exc:
            raise ServiceUnavailableError(f"The usage history cannot be read now: {exc}") from exc
        return Response(VmStatsSerializer.from_series(series))



class VmGuestApi(APIView):
    @extend_schema(responses=GuestInfoSerializer,
                   summary="What the guest says: OS, host name, addresses, file systems (guest agent, or DHCP leases)")
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        return Response(GuestInfoSerializer.from_guest(vm_guest_info(actor=request.user, vm=vm)))

def _action(fn: Callable[..., services.VmActionResult], summary: str) -> type[APIView]:
    class ActionApi(APIView):
        @extend_schema(request=None, responses=ActionResultSerializer, summary=summary)
        def post(self, request: Request, uuid: str) -> Response:
            result = fn(actor=request.user, vm=vm_get(actor=request.user, uuid=uuid, action=VmAction.OPERATE))
            return Response({"detail": result.message, "state": result.state.slug})

    ActionApi.__name__ = f"Vm{fn.__name__.title().replace('_', '')}Api"
    return ActionApi


VmStartApi = _action(services.vm_start, "Start (virsh start)")
VmRebootApi = _action(services.vm_reboot, "Reboot (virsh reboot)")
VmForceOffApi = _action(services.vm_force_off, "Force off (virsh destroy)")


class VmShutdownApi(APIView):
    @extend_schema(request=ShutdownSerializer, responses={200: ActionResultSerializer, 202: JobSerializer},
                   summary="Graceful shutdown (virsh shutdown); with force_after: forced off after N s (a job)")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.OPERATE)
        force_after = request.data.get("force_after") if hasattr(request.data, "get") else None
        if force_after is None:
            result = services.vm_shutdown(actor=request.user, vm=vm)
            return Response({"detail": result.message, "state": result.state.slug})
        queued = shutdown.vm_shutdown_deadline(actor=request.user, vm=vm, force_after=force_after)
        return Response({**JobSerializer(queued.job).data, "detail": queued.message}, status=202)


class VmAutostartApi(APIView):
    @extend_schema(request=AutostartSerializer, responses=ActionResultSerializer,
                   summary="Autostart on/off (virsh autostart [--disable])")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.OPERATE)
        body = AutostartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.vm_set_autostart(actor=request.user, vm=vm, enabled=body.validated_data["enabled"])
        return Response({"detail": result.message, "state": result.state.slug})


class VmBulkApi(APIView):
    @extend_schema(request=BulkSerializer, responses=BulkResultSerializer,
                   summary="One action on several VMs (start, shutdown, reboot, force-off): a result per VM")
    def post(self, request: Request) -> Response:
        body = BulkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.vm_bulk(actor=request.user, action=body.validated_data["action"],
                                  uuids=[str(u) for u in body.validated_data["uuids"]])
        return Response({"detail": result.message, "action": result.action,
                         "results": [{"uuid": i.uuid, "name": i.name, "ok": i.ok, "detail": i.message}
                                     for i in result.items]})


# ------------------------------------------------------------------------------------------------ sharing
def _share_json(request: Request, vm: object, share_id: int | None) -> dict[str, object]:
    rows = {r.id: r for r in vm_shares(actor=request.user, vm=vm)}  # type: ignore[arg-type]
    return ShareSerializer.from_row(rows[share_id]) if share_id in rows else {}


class VmSharesApi(APIView):
    @extend_schema(responses=ShareSerializer(many=True), summary="Who a VM is shared with (owner and staff)")
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        return Response([ShareSerializer.from_row(r) for r in vm_shares(actor=request.user, vm=vm)])

    @extend_schema(request=ShareSerializer, responses={201: ShareSerializer, 200: ShareSerializer},
                   summary='Share a VM with {"user": name} or {"group": name} as "role" (again: changes the role)')
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.SHARE)
        body = ShareSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        before = {r.id for r in vm_shares(actor=request.user, vm=vm)}
        result = services.vm_share(actor=request.user, vm=vm, user=data.get("user") or None,
                                   group=data.get("group") or None, role=data["role"])
        return Response({**_share_json(request, vm, result.share_id), "detail": result.message},
                        status=200 if result.share_id in before else 201)


class VmShareApi(APIView):
    @extend_schema(request=ShareRoleSerializer, responses=ShareSerializer, summary="Change a share's role")
    def patch(self, request: Request, uuid: str, pk: int) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.SHARE)
        body = ShareRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.vm_share_update(actor=request.user, vm=vm, share_id=pk, role=body.validated_data["role"])
        return Response({**_share_json(request, vm, result.share_id), "detail": result.message})

    @extend_schema(responses={200: None}, summary="Stop sharing: the user or group loses access at once")
    def delete(self, request: Request, uuid: str, pk: int) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.SHARE)
        result = services.vm_unshare(actor=request.user, vm=vm, share_id=pk)
        return Response({"detail": result.message})


# ------------------------------------------------------------------------------------------------ activity
class ActivityApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("vm", str, description="a VM's UUID"),
            OpenApiParameter("action", str, description="an action, or its start (vm., vm.clone)"),
            OpenApiParameter("user", str, description="who did it (user name)"),
            OpenApiParameter("since", str, description="from this date (2025-01-31) or date and time"),
            OpenApiParameter("until", str, description="up to this date (its whole day) or date and time"),
            OpenApiParameter("ok", bool, description="true: succeeded, false: failed"),
            OpenApiParameter("limit", int), OpenApiParameter("offset", int),
        ],
        responses=ActivitySerializer(many=True),
        summary="The audit entries you may read: your VMs' (owned or shared) and your own actions; staff all",
    )
    def get(self, request: Request) -> Response:
        entries = activity_list(actor=request.user, filters=parse_activity_filters(request.query_params))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response([ActivitySerializer.from_entry(e) for e in page or []])
