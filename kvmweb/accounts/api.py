"""``GET /api/v1/quota/``: the caller's limits and what they use (thin: the selectors do the work)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import quota_summary


class _Resource(serializers.Serializer):
    limit = serializers.IntegerField(allow_null=True, help_text="null = no limit")
    used = serializers.IntegerField()


class QuotaSerializer(serializers.Serializer):
    unlimited = serializers.BooleanField(help_text="true for staff and for users without any limit")
    vms = _Resource()
    vcpus = _Resource()
    memory_mib = _Resource()
    disk_gib = _Resource(help_text="used = the capacity of the caller's volumes, in whole GiB rounded up")
    disk_bytes_used = serializers.IntegerField()
    unavailable_hosts = serializers.ListField(child=serializers.CharField(),
                                              help_text="hosts that did not answer: their VMs count 0 vCPUs/memory")


class QuotaApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=QuotaSerializer, summary="The caller's quota and usage")
    def get(self, request: Request) -> Response:
        s = quota_summary(request.user, always=True)
        return Response({
            "unlimited": s.limits.unlimited,
            **{key: {"limit": limit, "used": used} for key, limit, used in s.resources()},
            "disk_bytes_used": s.usage.disk_bytes,
            "unavailable_hosts": s.usage.unavailable,
        })
