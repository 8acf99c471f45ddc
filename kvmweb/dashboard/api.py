"""``GET /api/v1/dashboard/``: what the landing page shows, as JSON, from the same reads (:mod:`.selectors`)."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.access.permissions import is_staff

from .selectors import Figure, HostCard, MyQuota, MyVms, host_cards, my_quota, my_vms, recent_jobs


class DashboardSerializer(serializers.Serializer):
    vms = serializers.DictField(help_text="the VMs you may see: total, count by state, a short list (running first)")
    quota = serializers.DictField(allow_null=True, help_text="per resource: used and limit (null: no limit); "
                                                             "null for staff")
    jobs = serializers.ListField(child=serializers.DictField(), help_text="your newest jobs (staff: everyone's)")
    hosts = serializers.ListField(child=serializers.DictField(), allow_null=True,
                                  help_text="staff only: per host capacity, allocation, use, pools, busiest VMs")


def _figure(f: Figure | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"capacity": f.capacity, "allocated": f.allocated, "allocated_running": f.allocated_running,
            "used": f.used, "used_pct": f.used_pct}


def _host(c: HostCard) -> dict[str, Any]:
    return {
        "id": c.host.pk, "name": c.host.name, "uri": c.host.uri, "available": c.available, "error": c.error,
        "accel": c.accel or None, "hypervisor": c.hypervisor or None, "libvirt_version": c.libvirt_version or None,
        "vms": c.vms, "states": {state.slug: n for state, n in c.states},
        "cpus": _figure(c.cpus), "memory_bytes": _figure(c.memory),
        "pools": [{"name": p.name, "state": p.state.slug, "capacity": p.capacity, "allocation": p.allocation,
                   "available": p.available} for p in c.pools],
        "pools_error": c.pools_error,
        "top": {t.key: [{"uuid": v.uuid, "name": v.name, "value": v.value} for v in t.vms] for t in c.top},
        "sampled": c.sampled.isoformat() if c.sampled else None,
    }


def _vms(v: MyVms) -> dict[str, Any]:
    return {
        "total": v.total, "states": {state.slug: n for state, n in v.states},
        "list": [{"uuid": r.uuid, "name": r.name, "host": r.host, "state": r.state.slug if r.state else None,
                  "your_role": r.role or None, "cpu_pct": r.cpu_pct, "mem_used_bytes": r.mem_used} for r in v.rows],
        "unavailable": [{"host": host, "detail": detail} for host, detail in v.unavailable],
    }


def _quota(q: MyQuota) -> dict[str, Any]:
    return {line.key: {"used": line.used, "limit": line.limit} for line in q.lines}


class DashboardApi(APIView):
    @extend_schema(responses=DashboardSerializer, summary="The dashboard: your VMs, quota and jobs; hosts for staff")
    def get(self, request: Request) -> Response:
        staff = is_staff(request.user)
        return Response({
            "vms": _vms(my_vms(actor=request.user)),
            "quota": None if staff else _quota(my_quota(actor=request.user)),
            "jobs": [{"id": j.pk, "title": j.title, "kind": j.kind, "state": j.state, "progress": j.progress,
                      "created": j.created.isoformat()} for j in recent_jobs(actor=request.user)],
            "hosts": [_host(c) for c in host_cards(actor=request.user)] if staff else None,
        })
