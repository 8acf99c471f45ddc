"""REST API of snapshots (DRF; thin)."""
from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import VmAction
from kvmweb.core.errors import ValidationError
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.machines.selectors import vm_get

from . import selectors, snapshots

TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


class SnapshotCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=64, help_text=hv.NAME_RULE)
    description = serializers.CharField(max_length=snapshots.DESCRIPTION_MAX, required=False, allow_blank=True,
                                        default="")
    memory = serializers.BooleanField(default=True, help_text=(
        "save a running VM's memory (required while it runs: libvirt takes no disk-only internal snapshot of a "
        "running VM); ignored for a shut-off VM"))


class SnapshotRevertSerializer(serializers.Serializer):  # type: ignore[type-arg]
    confirm = serializers.BooleanField(default=False, help_text="needed when the VM runs: its current state is lost")


def snapshot_json(info: hv.SnapshotInfo, depth: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": info.name, "description": info.description, "created": info.created, "state": info.state,
        "parent": info.parent, "current": info.current, "memory": info.memory, "disks": list(info.disks),
    }
    if depth is not None:
        data["depth"] = depth
    return data


def _body(serializer_class: type, request: Request) -> dict[str, Any]:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class VmSnapshotsApi(APIView):
    @extend_schema(summary="A VM's snapshots in tree order (virsh snapshot-list --tree), and whether it can take one")
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        snaps = selectors.snapshot_overview(actor=request.user, vm=vm)
        return Response({"current": snaps.current, "state": snaps.state.slug, "can_snapshot": snaps.refusal is None,
                         "refusal": snaps.refusal,
                         "snapshots": [snapshot_json(n.snapshot, n.depth) for n in snaps.tree]})

    @extend_schema(request=SnapshotCreateSerializer, responses=JobSerializer, summary=(
        "Take an internal snapshot as a job (virsh snapshot-create-as VM NAME --description TEXT)"))
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(SnapshotCreateSerializer, request)
        job = snapshots.snapshot_create(actor=request.user, vm=vm, name=body["name"],
                                        description=body["description"], memory=body["memory"])
        return Response(JobSerializer(job).data, status=202)


class VmSnapshotApi(APIView):
    @extend_schema(summary="One snapshot (virsh snapshot-info)")
    def get(self, request: Request, uuid: str, name: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        return Response(snapshot_json(selectors.snapshot_detail(actor=request.user, vm=vm, name=name)))

    @extend_schema(parameters=[OpenApiParameter("children", bool)], responses=JobSerializer,
                   summary="Delete a snapshot as a job (virsh snapshot-delete VM NAME [--children])")
    def delete(self, request: Request, uuid: str, name: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        value = str(request.query_params.get("children", "false")).lower()
        if value not in (*TRUE, *FALSE):
            raise ValidationError("children must be true or false.", fields={"children": ["true or false"]})
        job = snapshots.snapshot_delete(actor=request.user, vm=vm, name=name, children=value in TRUE)
        return Response(JobSerializer(job).data, status=202)


class VmSnapshotRevertApi(APIView):
    @extend_schema(request=SnapshotRevertSerializer, responses=JobSerializer,
                   summary="Revert to a snapshot as a job (virsh snapshot-revert VM NAME)")
    def post(self, request: Request, uuid: str, name: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(SnapshotRevertSerializer, request)
        job = snapshots.snapshot_revert(actor=request.user, vm=vm, name=name, confirm=body["confirm"])
        return Response(JobSerializer(job).data, status=202)


VM = "vms/<uuid:uuid>/snapshots/"
urls: list[URLPattern] = [
    path(VM, VmSnapshotsApi.as_view(), name="vm-snapshots"),
    path(VM + "<str:name>/", VmSnapshotApi.as_view(), name="vm-snapshot"),
    path(VM + "<str:name>/revert/", VmSnapshotRevertApi.as_view(), name="vm-snapshot-revert"),
]
