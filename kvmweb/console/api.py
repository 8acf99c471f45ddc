"""Console API: a one-time token to open a VM's console through the proxy."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.machines.selectors import vm_get

from .selectors import console_ws_base
from .services import console_token_issue


class ConsoleTokenSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="the websocket URL to open, one-time token included: valid for 30 s, once, "
                                          "only for you and this VM")
    expires = serializers.DateTimeField(help_text="open the URL before this moment")
    view_only = serializers.BooleanField(help_text="you may watch, not type or click: the proxy passes no input")


class ConsoleTokenApi(APIView):
    @extend_schema(request=None, responses=ConsoleTokenSerializer, summary="Issue a one-time console URL")
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        # Asked with an API token rather than the portal's session: the client has no session cookie to show the
        # proxy (and, not being a browser, sends no Origin); the token alone then stands for its user.
        api = not isinstance(request.successful_authenticator, SessionAuthentication)
        issued = console_token_issue(actor=request.user, vm=vm, api=api)
        return Response({"url": console_ws_base(request) + issued.path, "expires": issued.expires_at,
                         "view_only": issued.view_only})
