"""REST API for networks and VM NICs: thin, every change goes through the same services as the pages."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import VmAction
from kvmweb.core.errors import ValidationError
from kvmweb.machines.selectors import vm_get

from . import services
from .forms import default_gateway
from kvmweb.hosts.selectors import host_get

from .selectors import NetworkDetail, NetworkRow, network_detail, network_list, vm_nics


# ------------------------------------------------------------------------------------------------ serializers
class DhcpHostSerializer(serializers.Serializer):
    mac = serializers.CharField(max_length=17)
    ip = serializers.CharField(max_length=15)
    name = serializers.CharField(max_length=63, required=False, allow_blank=True, default="")


class NetworkDefineSerializer(serializers.Serializer):
    host = serializers.IntegerField(help_text="host id")
    name = serializers.CharField(max_length=64)
    mode = serializers.ChoiceField(choices=hv.FORWARD_MODES, default="isolated")
    bridge = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True, default=None)
    subnet = serializers.CharField(max_length=43, required=False, allow_null=True, allow_blank=True, default=None)
    gateway = serializers.CharField(max_length=15, required=False, allow_null=True, allow_blank=True, default=None,
                                    help_text="default: the subnet's first address")
    dhcp_start = serializers.CharField(max_length=15, required=False, allow_null=True, allow_blank=True,
                                       default=None)
    dhcp_end = serializers.CharField(max_length=15, required=False, allow_null=True, allow_blank=True, default=None)
    hosts = DhcpHostSerializer(many=True, required=False, default=list)
    domain = serializers.CharField(max_length=253, required=False, allow_null=True, allow_blank=True, default=None)
    allow_users = serializers.BooleanField(default=False, help_text="users may attach their VMs to it")

    def spec(self) -> hv.NetworkSpec:
        d = self.validated_data
        subnet = d["subnet"] or None
        gateway = d["gateway"] or None
        if subnet and not gateway and d["mode"] != "bridge":
            gateway = default_gateway(subnet)
        return hv.NetworkSpec(
            name=d["name"], mode=d["mode"], bridge=d["bridge"] or None, subnet=subnet, gateway=gateway,
            dhcp_start=d["dhcp_start"] or None, dhcp_end=d["dhcp_end"] or None,
            hosts=tuple(hv.DhcpHost(h["mac"], h["ip"], h.get("name", "")) for h in d["hosts"]),
            domain=d["domain"] or None,
        )


class AttachedVmSerializer(serializers.Serializer):
    uuid = serializers.CharField()
    name = serializers.CharField()
    active = serializers.BooleanField()
    macs = serializers.ListField(child=serializers.CharField())


class NetworkSerializer(serializers.Serializer):
    """``virsh net-list --all`` row plus what its XML says and the VMs on it."""

    host = serializers.CharField()
    host_id = serializers.IntegerField()
    name = serializers.CharField()
    uuid = serializers.CharField()
    active = serializers.BooleanField()
    autostart = serializers.BooleanField()
    persistent = serializers.BooleanField()
    mode = serializers.CharField()
    bridge = serializers.CharField(allow_null=True)
    subnet = serializers.CharField(allow_null=True)
    gateway = serializers.CharField(allow_null=True)
    dhcp_start = serializers.CharField(allow_null=True)
    dhcp_end = serializers.CharField(allow_null=True)
    hosts = DhcpHostSerializer(many=True)
    domain = serializers.CharField(allow_null=True)
    users_may_attach = serializers.BooleanField()
    vms = AttachedVmSerializer(many=True)
    url = serializers.CharField()

    @staticmethod
    def from_row(row: NetworkRow) -> dict[str, Any]:
        s, spec = row.summary, row.spec
        return {
            "host": row.host.name, "host_id": row.host.pk, "name": s.name, "uuid": s.uuid, "active": s.active,
            "autostart": s.autostart, "persistent": s.persistent, "mode": spec.mode, "bridge": spec.bridge,
            "subnet": spec.subnet, "gateway": spec.gateway, "dhcp_start": spec.dhcp_start,
            "dhcp_end": spec.dhcp_end, "hosts": [vars(h) for h in spec.hosts], "domain": spec.domain,
            "users_may_attach": row.allowed, "vms": [{**vars(v), "macs": list(v.macs)} for v in row.vms],
            "url": f"/api/v1/hosts/{row.host.pk}/networks/{s.name}/",
        }


class LeaseSerializer(serializers.Serializer):
    mac = serializers.CharField()
    ip = serializers.CharField()
    prefix = serializers.IntegerField()
    hostname = serializers.CharField()
    expiry = serializers.IntegerField(help_text="seconds since the epoch")
    client_id = serializers.CharField()


class NetworkDetailSerializer(NetworkSerializer):
    """``virsh net-info`` + ``net-dhcp-leases`` + ``net-dumpxml`` (staff)."""

    leases = LeaseSerializer(many=True)
    xml = serializers.CharField(allow_null=True)

    @staticmethod
    def from_detail(detail: NetworkDetail) -> dict[str, Any]:
        data = NetworkSerializer.from_row(detail.row)
        data["bridge"] = detail.info.bridge
        data["leases"] = [vars(lease) for lease in detail.leases]
        data["xml"] = detail.xml
        return data


class NetworkAutostartSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class NetworkAccessSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()


class NetworkResultSerializer(serializers.Serializer):
    detail = serializers.CharField()


class NicSerializer(serializers.Serializer):
    mac = serializers.CharField()
    type = serializers.CharField()
    source = serializers.CharField()
    model = serializers.CharField()
    target = serializers.CharField(allow_null=True)
    link_up = serializers.BooleanField()
    addresses = serializers.ListField(child=serializers.CharField())


class NicAddSerializer(serializers.Serializer):
    network = serializers.CharField(max_length=64)
    model = serializers.ChoiceField(choices=hv.NIC_MODELS, default="virtio")
    mac = serializers.CharField(max_length=17, required=False, allow_blank=True, allow_null=True, default=None,
                                help_text="empty: generated")


class NicTargetSerializer(serializers.Serializer):
    mac = serializers.CharField(max_length=17)


class NicLinkSerializer(NicTargetSerializer):
    up = serializers.BooleanField()


class NicResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    mac = serializers.CharField()
    network = serializers.CharField()
    live = serializers.BooleanField()
    pending = serializers.BooleanField()


def _valid(serializer: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    body = serializer(data=request.data)
    body.is_valid(raise_exception=True)
    data: dict[str, Any] = body.validated_data
    return data


def _nic_result(result: services.NicResult) -> dict[str, Any]:
    return {"detail": result.message, "mac": result.nic.mac, "network": result.nic.source, "live": result.live,
            "pending": result.pending}


def _nic_dict(nic: hv.NicInfo) -> dict[str, Any]:
    return {**vars(nic), "addresses": list(nic.addresses)}


# ------------------------------------------------------------------------------------------------ networks
class NetworkListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("host", int, description="host id")],
                   responses=NetworkSerializer(many=True),
                   summary="Networks (virsh net-list --all): staff see all, users those they may attach to")
    def get(self, request: Request) -> Response:
        host = request.query_params.get("host", "")
        if host and not str(host).isdigit():
            raise ValidationError("host must be a host id.", fields={"host": ["a host id"]})
        result = network_list(actor=request.user, host_id=int(host) if host else None)
        return Response({
            "results": [NetworkSerializer.from_row(r) for r in result.rows],
            "unavailable_hosts": [{"host": h.name, "detail": d} for h, d in result.unavailable],
        })

    @extend_schema(request=NetworkDefineSerializer, responses={201: NetworkDetailSerializer},
                   summary="Define a network (virsh net-define; staff)")
    def post(self, request: Request) -> Response:
        body = NetworkDefineSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        host = host_get(body.validated_data["host"])
        spec = body.spec()
        services.network_define(actor=request.user, host=host, spec=spec,
                                allow_users=body.validated_data["allow_users"])
        detail = network_detail(actor=request.user, host_id=host.pk, name=spec.name)
        return Response(NetworkDetailSerializer.from_detail(detail), status=201)


class NetworkDetailApi(APIView):
    @extend_schema(responses=NetworkDetailSerializer,
                   summary="A network (virsh net-info, net-dhcp-leases, net-dumpxml for staff)")
    def get(self, request: Request, host_id: int, name: str) -> Response:
        return Response(NetworkDetailSerializer.from_detail(
            network_detail(actor=request.user, host_id=host_id, name=name)))

    @extend_schema(responses=NetworkResultSerializer, summary="Delete an inactive network (virsh net-undefine; staff)")
    def delete(self, request: Request, host_id: int, name: str) -> Response:
        result = services.network_delete(actor=request.user, host=host_get(host_id), name=name)
        return Response({"detail": result.message})


class NetworkStartApi(APIView):
    @extend_schema(request=None, responses=NetworkResultSerializer, summary="Start (virsh net-start; staff)")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        result = services.network_start(actor=request.user, host=host_get(host_id), name=name)
        return Response({"detail": result.message})


class NetworkStopApi(APIView):
    @extend_schema(request=None, responses=NetworkResultSerializer,
                   summary="Stop (virsh net-destroy; staff): lists the running VMs that lost connectivity")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        result = services.network_stop(actor=request.user, host=host_get(host_id), name=name)
        return Response({"detail": result.message, "disconnected_vms": [v.name for v in result.disconnected]})


class NetworkAutostartApi(APIView):
    @extend_schema(request=NetworkAutostartSerializer, responses=NetworkResultSerializer,
                   summary="Autostart on/off (virsh net-autostart [--disable]; staff)")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        enabled = _valid(NetworkAutostartSerializer, request)["enabled"]
        result = services.network_set_autostart(actor=request.user, host=host_get(host_id), name=name,
                                                enabled=enabled)
        return Response({"detail": result.message})


class NetworkAccessApi(APIView):
    @extend_schema(request=NetworkAccessSerializer, responses=NetworkResultSerializer,
                   summary="Whether users may attach their VMs to this network (staff)")
    def post(self, request: Request, host_id: int, name: str) -> Response:
        allowed = _valid(NetworkAccessSerializer, request)["allowed"]
        result = services.network_set_allowed(actor=request.user, host=host_get(host_id), name=name,
                                              allowed=allowed)
        return Response({"detail": result.message})


# ------------------------------------------------------------------------------------------------ VM NICs
class VmNicListApi(APIView):
    @extend_schema(responses=NicSerializer(many=True), summary="A VM's NICs (virsh domiflist, domifaddr)")
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        return Response([_nic_dict(n) for n in vm_nics(actor=request.user, vm=vm).nics])

    @extend_schema(request=NicAddSerializer, responses={201: NicResultSerializer},
                   summary="Add a NIC (virsh attach-interface --config [--live])")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        d = _valid(NicAddSerializer, request)
        result = services.nic_attach(actor=request.user, vm=vm, network=d["network"], model=d["model"],
                                     mac=d["mac"] or None)
        return Response(_nic_result(result), status=201)


class VmNicDetachApi(APIView):
    @extend_schema(request=NicTargetSerializer, responses=NicResultSerializer,
                   summary="Remove a NIC by MAC (virsh detach-interface --config [--live])")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        result = services.nic_detach(actor=request.user, vm=vm, mac=_valid(NicTargetSerializer, request)["mac"])
        return Response(_nic_result(result))


class VmNicLinkApi(APIView):
    @extend_schema(request=NicLinkSerializer, responses=NicResultSerializer,
                   summary="Link up/down (virsh domif-setlink)")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        d = _valid(NicLinkSerializer, request)
        up = d["up"]
        result = services.nic_set_link(actor=request.user, vm=vm, mac=d["mac"], up=up)
        return Response(_nic_result(result))
