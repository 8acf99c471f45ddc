"""The caller's own account in the API (thin: selectors read, services change): ``/api/v1/quota/`` (limits and
usage), ``/api/v1/tokens/`` (API tokens), ``/api/v1/ssh-keys/`` (SSH public keys). Everyone sees only their own."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import sshkeys, tokens
from .models import ApiToken, SshKey
from .selectors import quota_summary, ssh_keys_of, tokens_of


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


# ------------------------------------------------------------------------------------------------ API tokens
class ExpiryField(serializers.Field):  # type: ignore[type-arg]
    """A date (the token works until the end of that day, in the portal's time zone) or an ISO 8601 date-time."""

    def to_internal_value(self, data: Any) -> dt.date | dt.datetime:
        text = str(data).strip()
        try:
            parsed = parse_date(text) if len(text) == 10 else parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise serializers.ValidationError("a date (2026-12-31) or an ISO 8601 date-time")
        return parsed

    def to_representation(self, value: Any) -> Any:
        return value


class TokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=tokens.NAME_MAX)
    expires = ExpiryField(required=False, allow_null=True, default=None,
                          help_text="empty: until revoked; a date: until the end of that day; or a date-time")


class TokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="the token's first characters, to recognise it")
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField(allow_null=True)
    last_used = serializers.DateTimeField(allow_null=True, help_text="updated at most once a minute")
    expired = serializers.BooleanField()

    @staticmethod
    def of(token: ApiToken) -> dict[str, Any]:
        return TokenSerializer({
            "id": token.pk, "name": token.name, "prefix": token.prefix, "created": token.created,
            "expires": token.expires, "last_used": token.last_used,
            "expired": token.expires is not None and token.expires <= timezone.now()}).data


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="the secret: shown only in this answer, never again")
    detail = serializers.CharField()


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class TokenListApi(APIView):
    """Your API tokens: list them, make one (its secret is in the answer, and only there)."""

    @extend_schema(responses=TokenSerializer(many=True), summary="Your API tokens (revoked ones are not listed)")
    def get(self, request: Request) -> Response:
        return Response([TokenSerializer.of(t) for t in tokens_of(request.user)])

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer},
                   summary="Make an API token; the answer carries its secret, shown only once")
    def post(self, request: Request) -> Response:
        body = TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        made = tokens.token_create(actor=request.user, name=body.validated_data["name"],
                                   expires=body.validated_data["expires"])
        return Response({**TokenSerializer.of(made.token), "token": made.secret, "detail": made.message},
                        status=201)


class TokenDetailApi(APIView):
    """Revoke one of your API tokens."""

    @extend_schema(responses=DetailSerializer, summary="Revoke one of your API tokens")
    def delete(self, request: Request, pk: int) -> Response:
        return Response({"detail": tokens.token_revoke(actor=request.user, token_id=pk).message})


# ------------------------------------------------------------------------------------------------ SSH keys
class SshKeyAddSerializer(serializers.Serializer):
    public_key = serializers.CharField(max_length=sshkeys.MAX_LENGTH,
                                       help_text="one OpenSSH public-key line (the .pub file)")
    name = serializers.CharField(max_length=sshkeys.NAME_MAX, required=False, allow_blank=True, default="",
                                 help_text="empty: the key's comment")


class SshKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    key_type = serializers.CharField()
    bits = serializers.IntegerField()
    fingerprint = serializers.CharField(help_text="SHA256:… as ssh-keygen -lf prints it")
    public_key = serializers.CharField(help_text="type and base64, without comment")
    created = serializers.DateTimeField()

    @staticmethod
    def of(key: SshKey) -> dict[str, Any]:
        return SshKeySerializer({"id": key.pk, "name": key.name, "key_type": key.key_type, "bits": key.bits,
                                 "fingerprint": key.fingerprint, "public_key": key.public_key,
                                 "created": key.created}).data


class SshKeyAddedSerializer(SshKeySerializer):
    detail = serializers.CharField()


class SshKeyListApi(APIView):
    """Your SSH public keys: list them, add one."""

    @extend_schema(responses=SshKeySerializer(many=True), summary="Your SSH public keys")
    def get(self, request: Request) -> Response:
        return Response([SshKeySerializer.of(k) for k in ssh_keys_of(request.user)])

    @extend_schema(request=SshKeyAddSerializer, responses={201: SshKeyAddedSerializer},
                   summary="Add an SSH public key (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa ≥ 2048 bits)")
    def post(self, request: Request) -> Response:
        body = SshKeyAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        added = sshkeys.ssh_key_add(actor=request.user, public_key=body.validated_data["public_key"],
                                    name=body.validated_data["name"])
        return Response({**SshKeySerializer.of(added.key), "detail": added.message}, status=201)


class SshKeyDetailApi(APIView):
    """Delete one of your SSH keys."""

    @extend_schema(responses=DetailSerializer, summary="Delete one of your SSH public keys")
    def delete(self, request: Request, pk: int) -> Response:
        return Response({"detail": sshkeys.ssh_key_delete(actor=request.user, key_id=pk).message})
