"""REST API of the fleet app (DRF; thin): move a VM, a host's maintenance and evacuation, placement."""
from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.access.permissions import require_staff
from kvmweb.core.errors import ValidationError
from kvmweb.hosts.models import Host
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.machines.selectors import vm_get

from . import maintenance, migration, selectors
from .placement import Need


class MigrateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    host = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="any", help_text=(
        'the destination host\'s id or name; "any" (or nothing) lets placement choose'))
    copy_storage = serializers.BooleanField(default=False, help_text=(
        "copy the disks to the destination (virsh migrate --copy-storage-all); else they must be on storage "
        "both hosts see"))
    live = serializers.BooleanField(required=False, allow_null=True, default=None, help_text=(
        "live (a running VM) or offline (a shut-off VM); by default what the VM's state calls for"))


class MaintenanceSerializer(serializers.Serializer):  # type: ignore[type-arg]
    maintenance = serializers.BooleanField(help_text="true: no new VMs land here; false: it takes new VMs again")


def _body(serializer_class: type, request: Request) -> dict[str, Any]:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class VmMigrateApi(APIView):
    @extend_schema(request=MigrateSerializer, responses=JobSerializer, summary=(
        "Move a VM to another host as a job (virsh migrate --live --persistent --undefinesource "
        "[--copy-storage-all]; offline for a shut-off VM)"))
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        body = _body(MigrateSerializer, request)
        job = migration.vm_migrate(actor=request.user, vm=vm, dest_host=selectors.host_choice(body["host"]),
                                   copy_storage=body["copy_storage"], live=body["live"])
        return Response(JobSerializer(job).data, status=202)


class HostMaintenanceApi(APIView):
    permission_classes = [permissions.IsAdminUser]  # staff only; the service checks again

    @extend_schema(request=MaintenanceSerializer, summary="Put a host into maintenance (no new VMs) or take it out")
    def post(self, request: Request, pk: int) -> Response:
        require_staff(request.user, "put hosts into maintenance")
        host = get_object_or_404(Host, pk=pk)
        body = _body(MaintenanceSerializer, request)
        result = maintenance.host_maintenance_set(actor=request.user, host=host, on=body["maintenance"])
        return Response({"id": host.pk, "name": host.name, "maintenance": result.host.maintenance,
                         "detail": result.message})


class HostEvacuateApi(APIView):
    permission_classes = [permissions.IsAdminUser]  # staff only; the service checks again

    @extend_schema(request=None, responses=JobSerializer, summary=(
        "Evacuate a host in maintenance: a parent job with one live migration per running VM"))
    def post(self, request: Request, pk: int) -> Response:
        require_staff(request.user, "evacuate hosts")
        host = get_object_or_404(Host, pk=pk)
        job = maintenance.host_evacuate(actor=request.user, host=host)
        return Response(JobSerializer(job).data, status=202)


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, str(default))
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 1:
        raise ValidationError(f"{name} must be a whole number above zero.", fields={name: ["a number above zero"]})
    return number


class PlacementApi(APIView):
    permission_classes = [permissions.IsAdminUser]  # staff only; the service checks again

    @extend_schema(parameters=[OpenApiParameter("memory_mib", int), OpenApiParameter("vcpus", int),
                               OpenApiParameter("pool", str), OpenApiParameter("network", str)],
                   summary="Where a VM of this size would be placed now, and every host's verdict (staff)")
    def get(self, request: Request) -> Response:
        require_staff(request.user, "see placement")
        need = Need(memory_kib=_int(request, "memory_mib", 512) * 1024, vcpus=_int(request, "vcpus", 1),
                    pool=request.query_params.get("pool", ""), network=request.query_params.get("network", ""))
        placement = selectors.placement_preview(actor=request.user, need=need)
        assert placement is not None
        return Response({"host": placement.host.name if placement.host else None, "reason": placement.reason,
                         "hosts": [{"name": v.host.name, "fits": v.fits, "reason": v.reason}
                                   for v in placement.verdicts]})


urls: list[URLPattern] = [
    path("vms/<uuid:uuid>/migrate/", VmMigrateApi.as_view(), name="vm-migrate"),
    path("hosts/placement/", PlacementApi.as_view(), name="host-placement"),
    path("hosts/<int:pk>/maintenance/", HostMaintenanceApi.as_view(), name="host-maintenance"),
    path("hosts/<int:pk>/evacuate/", HostEvacuateApi.as_view(), name="host-evacuate"),
]
