"""REST API of backups (DRF; thin): a VM's backups, one backup, its restore, and the retention rules (staff)."""
from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.access.permissions import VmAction, require_login, require_staff
from kvmweb.core.errors import NotFoundError
from kvmweb.hosts.models import Host
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.machines.selectors import vm_get

from . import backups, selectors
from .models import Backup, Retention


class RestoreSerializer(serializers.Serializer):  # type: ignore[type-arg]
    mode = serializers.ChoiceField(choices=list(backups.RESTORE_MODES), help_text="new: a new VM; over: the VM")
    name = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text="the new VM's name")
    pool = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                 help_text="where the new VM's disks go (default: the original disk's pool)")
    confirm = serializers.BooleanField(default=False, help_text="over: replace the VM's disks' contents")


class RetentionSerializer(serializers.Serializer):  # type: ignore[type-arg]
    keep = serializers.IntegerField(min_value=1, max_value=1000)
    user = serializers.IntegerField(required=False, allow_null=True, help_text="a user's id: their VMs")
    host = serializers.IntegerField(required=False, allow_null=True, help_text="with pool: a host's id")
    pool = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text="a backup pool's name")


def _body(serializer_class: type, request: Request) -> dict[str, Any]:
    body = serializer_class(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def backup_json(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.pk, "vm": {"uuid": str(backup.vm_uuid), "name": backup.vm_name},
        "host": backup.host_id, "pool": backup.pool, "state": backup.state, "live": backup.live,
        "size": backup.size, "created": backup.created.isoformat(),
        "finished": backup.finished.isoformat() if backup.finished else None,
        "made_by": backup.made_by.get_username() if backup.made_by else None,
        "owner": backup.owner.get_username() if backup.owner else None,
        "disks": [{k: d.get(k) for k in ("target", "volume", "format", "capacity", "size")} for d in backup.disks],
    }


def retention_json(rule: Retention) -> dict[str, Any]:
    return {"id": rule.pk, "keep": rule.keep, "user": rule.user_id,
            "username": rule.user.get_username() if rule.user else None, "host": rule.host_id, "pool": rule.pool}


class VmBackupsApi(APIView):
    @extend_schema(summary="The backups of a VM, newest first")
    def get(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        return Response([backup_json(r.backup) for r in selectors.backup_list(actor=request.user, vm=vm)])

    @extend_schema(request=None, responses=JobSerializer, summary=(
        "Back up the VM's disks as a job (virsh backup-begin in push mode for a running VM; a copy when shut off)"))
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid, action=VmAction.MANAGE)
        job = backups.backup_create(actor=request.user, vm=vm)
        return Response(JobSerializer(job).data, status=202)


class BackupDetailApi(APIView):
    @extend_schema(summary="One backup")
    def get(self, request: Request, pk: int) -> Response:
        return Response(backup_json(selectors.backup_get(actor=request.user, pk=pk)))

    @extend_schema(summary="Delete a backup (its volumes and its record)")
    def delete(self, request: Request, pk: int) -> Response:
        backup = selectors.backup_get(actor=request.user, pk=pk, action=VmAction.MANAGE)
        result = backups.backup_delete(actor=request.user, backup=backup)
        return Response({"detail": result.message})


class BackupRestoreApi(APIView):
    @extend_schema(request=RestoreSerializer, responses=JobSerializer,
                   summary="Restore a backup as a new VM or over its (shut-off) VM, as a job")
    def post(self, request: Request, pk: int) -> Response:
        backup = selectors.backup_get(actor=request.user, pk=pk, action=VmAction.MANAGE)
        body = _body(RestoreSerializer, request)
        job = backups.backup_restore(actor=request.user, backup=backup, mode=body["mode"],
                                     name=body.get("name") or "", pool=body.get("pool") or "",
                                     confirm=body["confirm"])
        return Response(JobSerializer(job).data, status=202)


class RetentionListApi(APIView):
    @extend_schema(summary="Backup retention rules (staff)")
    def get(self, request: Request) -> Response:
        require_login(request.user)
        require_staff(request.user, "see backup retention")
        return Response([retention_json(r) for r in selectors.backup_retention_list()])

    @extend_schema(request=RetentionSerializer, summary="Set how many backups per VM to keep, per user or per pool")
    def post(self, request: Request) -> Response:
        require_login(request.user)
        require_staff(request.user, "set backup retention")
        body = _body(RetentionSerializer, request)
        host = None
        if body.get("host") is not None:
            host = Host.objects.filter(pk=body["host"]).first()
            if host is None:
                raise NotFoundError("No such host.")
        rule = backups.backup_retention_set(actor=request.user, keep=body["keep"], user_id=body.get("user"),
                                            host=host, pool=body.get("pool") or "")
        return Response(retention_json(rule), status=201)


def _rule(request: Request, pk: int) -> Retention:
    require_login(request.user)
    require_staff(request.user, "see or change backup retention")
    rule = Retention.objects.select_related("user").filter(pk=pk).first()
    if rule is None:
        raise NotFoundError("No such retention rule.")
    return rule


class RetentionDetailApi(APIView):
    @extend_schema(summary="One retention rule (staff)")
    def get(self, request: Request, pk: int) -> Response:
        return Response(retention_json(_rule(request, pk)))

    @extend_schema(summary="Remove a retention rule (staff)")
    def delete(self, request: Request, pk: int) -> Response:
        backups.backup_retention_delete(actor=request.user, rule=_rule(request, pk))
        return Response(status=204)


urls: list[URLPattern] = [
    path("vms/<uuid:uuid>/backups/", VmBackupsApi.as_view(), name="vm-backups"),
    path("backups/<int:pk>/", BackupDetailApi.as_view(), name="backup-detail"),
    path("backups/<int:pk>/restore/", BackupRestoreApi.as_view(), name="backup-restore"),
    path("backup-retention/", RetentionListApi.as_view(), name="backup-retention"),
    path("backup-retention/<int:pk>/", RetentionDetailApi.as_view(), name="backup-retention-detail"),
]
