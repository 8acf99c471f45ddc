"""``POST /api/v1/vms/``: create a VM (virt-install parity). Thin: the service validates everything."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from rest_framework.views import APIView

from kvmweb.jobs.serializers import JobSerializer

from .osinfo import GENERIC
from .services import vm_create


class VmCreateSerializer(serializers.Serializer[dict[str, Any]]):
    """Field by field what ``virt-install`` takes (see README, "Creating VMs")."""

    name = serializers.CharField(allow_blank=True, max_length=200, help_text="--name")
    host = serializers.CharField(required=False, allow_null=True, max_length=20, help_text=(
        'host id (--connect), or "any": placement chooses (also when omitted and there are several hosts); '
        "default: the template's or image's host"))
    vcpus = serializers.IntegerField(required=False, allow_null=True,
                                     help_text="--vcpus (default: the flavor's, else 1)")
    memory = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                   help_text="--memory: MiB, or with a unit ('2G'); default: the OS's recommendation")
    iso = serializers.IntegerField(required=False, allow_null=True, help_text="--cdrom: an ISO library id")
    template = serializers.IntegerField(required=False, allow_null=True,
                                        help_text="start from this template (an image, a flavor and defaults)")
    image = serializers.IntegerField(required=False, allow_null=True,
                                     help_text="--import: start from this image library id (disk images)")
    flavor = serializers.IntegerField(required=False, allow_null=True,
                                      help_text="vCPUs, memory and disk size from this flavor (template/image VMs)")
    clone_mode = serializers.ChoiceField(choices=["linked", "copy"], required=False, allow_null=True,
                                         help_text="linked: a qcow2 overlay on the image (instant); copy: a full copy")
    cloud_init = serializers.DictField(required=False, allow_null=True, help_text=(
        "--cloud-init: {hostname, user, ssh_keys: [profile key ids or public-key lines], password, user_data: "
        "'#cloud-config ...'}; missing fields default to the VM's name, your user name and all your profile keys"))
    disk_size = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=32,
                                      help_text="--disk size=: GiB, or with a unit ('512M'); null = no disk")
    disk_format = serializers.CharField(default="qcow2", max_length=16, help_text="--disk format=: qcow2 or raw")
    disk_pool = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="--disk pool=")
    os_variant = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=64,
                                       help_text=f"--os-variant (default: the template's or image's, else {GENERIC})")
    network = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64,
                                    help_text="--network network=NAME; null = --network none")
    start = serializers.BooleanField(default=True, help_text="start after creation (virt-install --noreboot: false)")
    autostart = serializers.BooleanField(default=False, help_text="--autostart")


class VmCreateApi(APIView):
    """POST /api/v1/vms/ creates a VM (the project's URLs join it with the machines app's list, GET)."""

    @extend_schema(request=VmCreateSerializer, responses={202: JobSerializer},
                   summary="Create a VM (virt-install): defines it and queues the vm.create job")
    def post(self, request: Request) -> Response:
        body = VmCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        data["os_variant_id"] = data.pop("os_variant", None)
        result = vm_create(actor=request.user, **data)
        vm = result.vm
        return Response(
            {"uuid": str(vm.uuid), "name": vm.name, "url": f"/vms/{vm.uuid}/", "detail": result.message,
             "job": JobSerializer(result.job).data},
            status=status.HTTP_202_ACCEPTED,
        )
