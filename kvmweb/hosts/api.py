"""The hosts API (staff): list, add (its SSH key confirmed in two calls), one host's details, remove."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .selectors import HostPage, HostStatus, host_any, host_page, host_status, host_status_list, portal_key


class HostSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    uri = serializers.CharField(help_text="as people read it: without the portal's key and known_hosts options")
    domain_type = serializers.CharField(help_text="what new guests get: kvm or qemu")
    enabled = serializers.BooleanField()
    maintenance = serializers.BooleanField()
    available = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    hostname = serializers.CharField(allow_null=True)
    cpus = serializers.IntegerField(allow_null=True)
    memory_kib = serializers.IntegerField(allow_null=True)
    libvirt_version = serializers.CharField(allow_null=True)
    vms = serializers.IntegerField(allow_null=True, help_text="domains on the host (running or not)")
    running = serializers.IntegerField(allow_null=True)

    @staticmethod
    def from_status(status: HostStatus) -> dict[str, Any]:
        f, host = status.facts, status.host
        return {
            "id": host.pk, "name": host.name, "uri": host.shown_uri, "domain_type": host.effective_domain_type,
            "enabled": host.enabled, "maintenance": host.maintenance, "available": status.available,
            "error": status.error, "hostname": f.hostname if f else None, "cpus": f.cpus if f else None,
            "memory_kib": f.memory_kib if f else None, "libvirt_version": f.libvirt_version if f else None,
            "vms": status.vms, "running": status.running,
        }


class HostDetailSerializer(HostSerializer):
    accel = serializers.CharField(allow_null=True, help_text="KVM (hardware) or TCG (emulation)")
    cpu = serializers.DictField(allow_null=True, help_text="model, vendor, sockets, cores, threads")
    numa_cells = serializers.ListField(child=serializers.DictField(), help_text="id, memory_kib, free_kib, cpus")
    free_memory_kib = serializers.IntegerField(allow_null=True)
    qemu_version = serializers.CharField(allow_null=True)
    pools = serializers.ListField(child=serializers.DictField())
    networks = serializers.ListField(child=serializers.DictField())
    domains = serializers.ListField(child=serializers.DictField(), help_text="uuid, name, state")

    @staticmethod
    def from_page(page: HostPage) -> dict[str, Any]:
        d = page.details
        body = HostSerializer.from_status(HostStatus(
            page.host, d.facts if d else None, page.error,
            vms=len(page.vms) if d else None, running=page.running if d else None))
        body.update({
            "accel": d.accel if d else None,
            "cpu": {"model": d.cpu_model, "vendor": d.cpu_vendor, "sockets": d.sockets, "cores": d.cores,
                    "threads": d.threads} if d else None,
            "numa_cells": [vars(c) for c in d.cells] if d else [],
            "free_memory_kib": d.free_memory_kib if d else None,
            "qemu_version": d.hypervisor_version if d else None,
            "pools": [{"name": p.name, "state": p.state.label, "type": p.type, "capacity": p.capacity,
                       "available": p.available} for p in page.pools],
            "networks": [{"name": n.name, "active": n.active, "mode": n.mode} for n in page.networks],
            "domains": [{"uuid": v.uuid, "name": v.name, "state": v.state.label} for v in page.vms],
        })
        return body


class HostAddSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, help_text="a slug: letters, digits, - and _")
    uri = serializers.CharField(max_length=255, help_text="qemu+ssh://user@host[:port]/system, qemu+tls://host/system")
    host_key_fingerprint = serializers.CharField(
        max_length=100, required=False, default="", allow_blank=True,
        help_text="SSH hosts: the SHA256 fingerprint the first call answered with, to confirm the host's key")


class HostListApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=HostSerializer(many=True), summary="Hosts and whether they answer (staff)")
    def get(self, request: Request) -> Response:
        return Response([HostSerializer.from_status(s) for s in host_status_list(count=True)])

    @extend_schema(
        request=HostAddSerializer, responses={201: HostSerializer},
        summary="Add a host (staff)",
        description="SSH hosts take two calls: the first answers 409 `host_key_unconfirmed` with the host's key "
                    "fingerprint in `fields.host_key_fingerprint[0]`; check it, then send the same body with "
                    "`host_key_fingerprint` set to it. The key is pinned in the portal's known_hosts and the "
                    "connection is tested (libvirt open + capabilities) before anything is saved; when the test "
                    "fails the answer is 400 and nothing stays (the key is unpinned again). See docs/hosts.md.")
    def post(self, request: Request) -> Response:
        body = HostAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.host_add(actor=request.user, **body.validated_data)
        return Response(HostSerializer.from_status(host_status(result.host, count=True)) | {"detail": result.message},
                        status=201)


class HostDetailApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses=HostDetailSerializer,
                   summary="One host: capabilities, NUMA cells, versions, pools, networks, domains (staff)")
    def get(self, request: Request, pk: int) -> Response:
        return Response(HostDetailSerializer.from_page(host_page(actor=request.user, host_id=pk)))

    @extend_schema(request=None, responses={200: None},
                   summary="Remove a host (staff): its records go, its VMs stay defined on it; 409 while jobs run")
    def delete(self, request: Request, pk: int) -> Response:
        result = services.host_remove(actor=request.user, host=host_any(pk))
        return Response({"detail": result.message})


class PortalKeyApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={200: None}, summary="The portal's SSH public key, for hosts' authorized_keys (staff)")
    def get(self, request: Request) -> Response:
        key = portal_key(actor=request.user)
        return Response({"public_key": key.public_key, "fingerprint": key.fingerprint,
                         "authorized_keys_line": key.authorized_keys_line})
