from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.core.errors import NotFoundError

from .models import Host
from .selectors import HostStatus, host_status, host_status_list


class HostSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    uri = serializers.CharField()
    domain_type = serializers.CharField(help_text="what new guests get: kvm or qemu")
    available = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    hostname = serializers.CharField(allow_null=True)
    cpus = serializers.IntegerField(allow_null=True)
    memory_kib = serializers.IntegerField(allow_null=True)
    libvirt_version = serializers.CharField(allow_null=True)

    @staticmethod
    def from_status(status: HostStatus) -> dict[str, Any]:
        f = status.facts
        return {
            "id": status.host.pk, "name": status.host.name, "uri": status.host.uri,
            "domain_type": status.host.effective_domain_type, "available": status.available,
            "error": status.error, "hostname": f.hostname if f else None, "cpus": f.cpus if f else None,
            "memory_kib": f.memory_kib if f else None, "libvirt_version": f.libvirt_version if f else None,
        }


class HostListApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=HostSerializer(many=True), summary="Hosts and whether they answer (staff)")
    def get(self, request: Request) -> Response:
        return Response([HostSerializer.from_status(s) for s in host_status_list()])


class HostDetailApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=HostSerializer, summary="One host (staff)")
    def get(self, request: Request, pk: int) -> Response:
        host = Host.objects.filter(pk=pk).first()
        if host is None:
            raise NotFoundError("No such host.")
        return Response(HostSerializer.from_status(host_status(host)))
