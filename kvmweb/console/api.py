"""Console API: a one-time token to open a VM's console through the proxy."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.machines.selectors import vm_get

from .selectors import console_ws_base
from .services import console_token_issue


class ConsoleTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="one-time, valid for 30 s, only for you and this VM")
    ws_url = serializers.CharField(help_text="the websocket URL to open (noVNC), token included")
    expires_at = serializers.DateTimeField()


class ConsoleTokenApi(APIView):
    @extend_schema(request=None, responses=ConsoleTokenSerializer, summary="Issue a one-time console token")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        issued = console_token_issue(actor=request.user, vm=vm)
        return Response({
            "token": issued.token,
            "ws_url": console_ws_base(request) + issued.path,
            "expires_at": issued.expires_at,
        })
