"""REST API for pools, volumes and a VM's disks: thin, every change goes through the services."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import VmAction
from kvmweb.core.api import MAX_PIECE, byte_offset, piece_length, request_chunks, stream_response
from kvmweb.core.errors import ValidationError
from kvmweb.hosts.models import Host
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.machines.selectors import vm_get

from . import clone, selectors, services
from .serializers import (
    BootOrderSerializer,
    BusSerializer,
    CdromAddSerializer,
    CdromSerializer,
    CloneSerializer,
    DiskAttachSerializer,
    DiskResizeSerializer,
    EnabledSerializer,
    PoolAccessSerializer,
    PoolDefineSerializer,
    ResizeSerializer,
    TargetSerializer,
    VolumeUploadBeginSerializer,
    VolumeUploadSerializer,
    VolumeCreateSerializer,
    pool_json,
    resize_json,
    vm_disks_json,
    volume_json,
)

TRUE = ("true", "1", "yes")


def _body(serializer_class: type, request: Request) -> dict[str, Any]:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def _flag(request: Request, name: str) -> bool:
    value = str(request.query_params.get(name, "false")).lower()
    if value not in (*TRUE, "false", "0", "no"):
        raise ValidationError(f"{name} must be true or false.", fields={name: ["true or false"]})
    return value in TRUE


# ---------------------------------------------------------------------------------------------- pools
class PoolListApi(APIView):
    @extend_schema(summary="Storage pools of a host (virsh pool-list --all --details)")
    def get(self, request: Request, host_id: int) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        return Response([pool_json(r) for r in selectors.pool_list(actor=request.user, host=host)])

    @extend_schema(request=PoolDefineSerializer, summary="Define, build and start a directory pool (staff)")
    def post(self, request: Request, host_id: int) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        services.staff_only(request.user)
        body = _body(PoolDefineSerializer, request)
        info = services.pool_define(actor=request.user, host=host, name=body["name"], path=body["path"],
                                    autostart=body["autostart"])
        return Response(pool_json(info), status=201)


class PoolDetailApi(APIView):
    @extend_schema(summary="One pool (virsh pool-info)")
    def get(self, request: Request, host_id: int, name: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        return Response(pool_json(selectors.pool_get(actor=request.user, host=host, name=name)))

    @extend_schema(parameters=[OpenApiParameter("delete_volumes", bool)],
                   summary="Stop and undefine a pool (staff); with delete_volumes its volumes go too")
    def delete(self, request: Request, host_id: int, name: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        result = services.pool_delete(actor=request.user, host=host, name=name,
                                      delete_volumes=_flag(request, "delete_volumes"))
        return Response(vars(result))


def _pool_action(fn: Any, summary: str, done: str) -> type[APIView]:
    class PoolActionApi(APIView):
        @extend_schema(request=None, summary=summary)
        def post(self, request: Request, host_id: int, name: str) -> Response:
            host = selectors.host_get(actor=request.user, host_id=host_id)
            fn(actor=request.user, host=host, name=name)
            info = selectors.pool_get(actor=request.user, host=host, name=name)
            return Response({"detail": done.format(name=name), **pool_json(info)})

    PoolActionApi.__name__ = f"Pool{fn.__name__.title().replace('_', '')}Api"
    return PoolActionApi


PoolStartApi = _pool_action(services.pool_start, "Start a pool (virsh pool-start)", "Pool {name} started.")
PoolStopApi = _pool_action(services.pool_stop, "Stop a pool (virsh pool-destroy)", "Pool {name} stopped.")
PoolRefreshApi = _pool_action(services.pool_refresh, "Rescan a pool (virsh pool-refresh)", "Pool {name} refreshed.")


class PoolAutostartApi(APIView):
    @extend_schema(request=EnabledSerializer, summary="Pool autostart on/off (virsh pool-autostart)")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        services.staff_only(request.user)
        enabled = _body(EnabledSerializer, request)["enabled"]
        services.pool_set_autostart(actor=request.user, host=host, name=name, enabled=enabled)
        return Response({"detail": f"Autostart {'on' if enabled else 'off'} for pool {name}."})


class PoolAccessApi(APIView):
    @extend_schema(request=PoolAccessSerializer, summary="Open a pool to everyone or to users (staff)")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        services.staff_only(request.user)
        body = _body(PoolAccessSerializer, request)
        users = list(get_user_model().objects.filter(username__in=body["users"]))
        missing = set(body["users"]) - {u.get_username() for u in users}
        if missing:
            raise ValidationError(f"Unknown users: {', '.join(sorted(missing))}.", fields={"users": sorted(missing)})
        services.pool_set_access(actor=request.user, host=host, name=name, everyone=body["everyone"], users=users)
        return Response({"detail": f"Access to pool {name} updated."})


# ---------------------------------------------------------------------------------------------- volumes
class VolumeListApi(APIView):
    @extend_schema(summary="Volumes of a pool you may use (virsh vol-list --details)")
    def get(self, request: Request, host_id: int, name: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        return Response([volume_json(r) for r in selectors.volume_list(actor=request.user, host=host, pool=name)])

    @extend_schema(request=VolumeCreateSerializer, summary="Create a volume (qemu-img create -f FMT NAME SIZE)")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        selectors.pool_get(actor=request.user, host=host, name=name)  # 404 before looking at the body
        body = _body(VolumeCreateSerializer, request)
        info = services.volume_create(actor=request.user, host=host, pool=name, name=body["name"],
                                      size=body["size"], fmt=body["format"])
        return Response(volume_json(info), status=201)


class VolumeDetailApi(APIView):
    @extend_schema(summary="One volume (qemu-img info) and the VMs using it")
    def get(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        row = selectors.volume_get(actor=request.user, host=host, pool=name, name=volume)
        return Response(volume_json(row))

    @extend_schema(summary="Delete a volume no VM uses (virsh vol-delete)")
    def delete(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        services.volume_delete(actor=request.user, host=host, pool=name, name=volume)
        return Response(status=204)


class VolumeResizeApi(APIView):
    @extend_schema(request=ResizeSerializer, summary="Grow a volume (qemu-img resize NAME +10G); online if in use")
    def post(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        selectors.volume_get(actor=request.user, host=host, pool=name, name=volume)  # 404 first
        size = _body(ResizeSerializer, request)["size"]
        return Response(resize_json(services.volume_resize(actor=request.user, host=host, pool=name, name=volume,
                                                           size=size)))


class VolumeDownloadApi(APIView):
    @extend_schema(summary="Download a volume's file, streamed through libvirt (virsh vol-download)")
    def get(self, request: Request, host_id: int, name: str, volume: str) -> StreamingHttpResponse:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        info, chunks = services.volume_download(actor=request.user, host=host, pool=name, name=volume)
        return stream_response(request._request, chunks, filename=info.name, length=info.physical or None)


class VolumeUploadApi(APIView):
    """An image upload in pieces (no request carries more than ``MAX_PIECE`` bytes: the web process holds a request
    body whole). POST ``{"size": N}`` makes the volume and the upload's job; PUT each piece, in order, at
    ``?offset=<bytes sent so far>``; after the last one the volume is ready. DELETE stops an unfinished upload."""

    parser_classes = [JSONParser]  # the pieces (PUT) are never parsed: read raw from the request stream

    def _host(self, request: Request, host_id: int, name: str) -> Host:
        host = selectors.host_get(actor=request.user, host_id=host_id)
        selectors.pool_get(actor=request.user, host=host, name=name)  # 404 before reading anything
        return host

    @extend_schema(responses=VolumeUploadSerializer,
                   summary="Where an unfinished upload stands (to resume at its offset)")
    def get(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = self._host(request, host_id, name)
        return Response(VolumeUploadSerializer(services.volume_upload_state(
            actor=request.user, host=host, pool=name, name=volume)).data)

    @extend_schema(request=VolumeUploadBeginSerializer, responses={201: VolumeUploadSerializer}, summary=(
        "Start an image upload (virsh vol-create-as + vol-upload): makes a volume of `size` bytes and a job"))
    def post(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = self._host(request, host_id, name)
        size = _body(VolumeUploadBeginSerializer, request)["size"]
        state = services.volume_upload_begin(actor=request.user, host=host, pool=name, name=volume, size=size)
        return Response(VolumeUploadSerializer(state).data, status=201)

    @extend_schema(request={"application/octet-stream": bytes}, parameters=[OpenApiParameter("offset", int)],
                   responses=VolumeUploadSerializer, summary=(
                       f"Send the next piece (at most {MAX_PIECE // 1024**2} MiB, raw bytes) at ?offset=<bytes sent "
                       "so far>; the last piece completes the volume (format detected, backing files refused)"))
    def put(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = self._host(request, host_id, name)
        length = piece_length(request._request)
        offset = byte_offset(request.query_params.get("offset"))
        state = services.volume_upload_piece(
            actor=request.user, host=host, pool=name, name=volume, offset=offset, length=length,
            chunks=request_chunks(request._request, length, hv.STREAM_CHUNK))
        return Response(VolumeUploadSerializer(state).data)

    @extend_schema(responses={204: None}, summary="Stop an unfinished upload: its volume is deleted")
    def delete(self, request: Request, host_id: int, name: str, volume: str) -> Response:
        host = self._host(request, host_id, name)
        services.volume_upload_cancel(actor=request.user, host=host, pool=name, name=volume)
        return Response(status=204)


# ---------------------------------------------------------------------------------------------- a VM's disks
class VmDisksApi(APIView):
    @extend_schema(summary="A VM's disks and CD-ROM drives with their volumes, and its boot order")
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        return Response(vm_disks_json(selectors.vm_disks(actor=request.user, vm=vm, choices=False)))

    @extend_schema(request=DiskAttachSerializer, summary="Attach a new or existing volume as a disk")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(DiskAttachSerializer, request)
        if body["new"]:
            result = services.disk_attach_new(actor=request.user, vm=vm, pool=body["pool"], name=body["volume"],
                                              size=body.get("size") or "", fmt=body["format"], bus=body["bus"])
        else:
            result = services.disk_attach_existing(actor=request.user, vm=vm, pool=body["pool"],
                                                   name=body["volume"], bus=body["bus"])
        return Response(_disk_json(result), status=201)


class VmDiskDetachApi(APIView):
    @extend_schema(request=TargetSerializer, summary="Detach a disk (its volume stays)")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        target = _body(TargetSerializer, request)["target"]
        return Response(_disk_json(services.disk_detach(actor=request.user, vm=vm, target=target)))


class VmDiskResizeApi(APIView):
    @extend_schema(request=DiskResizeSerializer, summary="Grow a disk (online when the VM runs)")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(DiskResizeSerializer, request)
        return Response(resize_json(services.disk_resize(actor=request.user, vm=vm, target=body["target"],
                                                         size=body["size"])))


class VmDiskBusApi(APIView):
    @extend_schema(request=BusSerializer, summary="Move a disk to another bus (VM shut off)")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(BusSerializer, request)
        result = services.disk_set_bus(actor=request.user, vm=vm, target=body["target"], bus=body["bus"])
        return Response(_disk_json(result))


class VmCdromApi(APIView):
    @extend_schema(request=CdromSerializer, summary="Insert, change or eject (empty volume) CD-ROM media")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.OPERATE)
        body = _body(CdromSerializer, request)
        if body.get("volume") or body.get("iso") is not None:
            result = services.cdrom_insert(actor=request.user, vm=vm, target=body["target"],
                                           pool=body.get("pool") or "", name=body.get("volume") or "",
                                           iso_id=body.get("iso"))
        else:
            result = services.cdrom_eject(actor=request.user, vm=vm, target=body["target"])
        return Response(_disk_json(result))


def _disk_json(result: services.DiskResult) -> dict[str, Any]:
    return {"detail": result.message, "target": result.target}


def _drive_json(change: services.DriveChange) -> dict[str, Any]:
    return {"detail": change.message, "target": change.target, "bus": change.bus, "pending": change.pending}


class VmCdromAddApi(APIView):
    @extend_schema(request=CdromAddSerializer, summary=(
        "Add a CD-ROM drive, empty or loaded (virt-xml --add-device --disk device=cdrom); next boot if running"))
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(CdromAddSerializer, request)
        change = services.cdrom_add(actor=request.user, vm=vm, bus=body["bus"], pool=body.get("pool") or "",
                                    name=body.get("volume") or "", iso_id=body.get("iso"))
        return Response(_drive_json(change), status=201)


class VmCdromRemoveApi(APIView):
    @extend_schema(request=TargetSerializer, summary="Remove a CD-ROM drive (its medium's file stays); next boot if "
                                                     "running")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        change = services.cdrom_remove(actor=request.user, vm=vm, target=_body(TargetSerializer, request)["target"])
        return Response(_drive_json(change))


class VmBootOrderApi(APIView):
    @extend_schema(request=BootOrderSerializer, summary="Set the boot order (next boot)")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        order = _body(BootOrderSerializer, request)["order"]
        result = services.boot_order_set(actor=request.user, vm=vm, order=order)
        return Response({"detail": result.message, "order": result.order})


class VmCloneApi(APIView):
    @extend_schema(request=CloneSerializer, responses=JobSerializer, summary=(
        "Clone a VM as a job (virt-clone --original SRC --name NEW --auto-clone); full copy or linked overlay"))
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        body = _body(CloneSerializer, request)
        job = clone.vm_clone(actor=request.user, vm=vm, name=body.get("name") or "", mode=body["mode"],
                                pause_source=body["pause_source"])
        return Response(JobSerializer(job).data, status=202)
