"""``GET /metrics``: the latest usage of every VM and host in Prometheus' text format, for staff (a session, or an
API token of a staff user: ``Authorization: Token <secret>``). See docs/monitoring.md for the series and labels.

Values are the collector's latest sample (averages over its last interval, ``KVMWEB_STATS_INTERVAL``), read from
Redis with one round trip for all VMs; no libvirt call is made here. A VM that is not running, or whose host's
collector is not working, has no usage series (``kvmweb_vm_running`` says 0).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView
from django.http import HttpResponse

from kvmweb.access.permissions import require_staff
from kvmweb.hosts.models import Host
from kvmweb.monitoring.selectors import host_latest, latest_for

from .models import VirtualMachine

VM_LABELS = ["uuid", "name", "host", "owner"]
# metric of monitoring.METRICS -> (Prometheus name, help)
VM_SERIES = {
    "cpu_pct": ("kvmweb_vm_cpu_percent", "CPU use in % of the VM's own vCPUs (0-100)"),
    "cpu_host_pct": ("kvmweb_vm_cpu_host_percent", "CPU use in % of all the host's CPUs"),
    "mem_used_bytes": ("kvmweb_vm_memory_used_bytes", "Memory the guest uses (balloon: current - unused; else QEMU's RSS)"),
    "mem_pct": ("kvmweb_vm_memory_used_percent", "Memory used in % of the VM's current memory"),
    "disk_rd_bps": ("kvmweb_vm_disk_read_bytes_per_second", "Bytes read per second, all disks"),
    "disk_wr_bps": ("kvmweb_vm_disk_write_bytes_per_second", "Bytes written per second, all disks"),
    "disk_rd_iops": ("kvmweb_vm_disk_read_requests_per_second", "Read requests per second, all disks"),
    "disk_wr_iops": ("kvmweb_vm_disk_write_requests_per_second", "Write requests per second, all disks"),
    "net_rx_bps": ("kvmweb_vm_network_receive_bytes_per_second", "Bytes received per second, all NICs"),
    "net_tx_bps": ("kvmweb_vm_network_transmit_bytes_per_second", "Bytes sent per second, all NICs"),
}


class PortalMetrics(Collector):
    """Builds the families at each scrape from the VM records, the hosts and the latest values in Redis."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        vms = list(VirtualMachine.objects.select_related("host", "owner").order_by("host__name", "name"))
        latest = latest_for(str(vm.uuid) for vm in vms)
        running = GaugeMetricFamily("kvmweb_vm_running", "1 if the VM's latest sample is fresh and it runs, else 0",
                                    labels=VM_LABELS)
        vcpus = GaugeMetricFamily("kvmweb_vm_vcpus", "vCPUs of the running VM", labels=VM_LABELS)
        memory = GaugeMetricFamily("kvmweb_vm_memory_bytes", "Current (balloon) memory of the running VM",
                                   labels=VM_LABELS)
        families = {m: GaugeMetricFamily(name, text, labels=VM_LABELS) for m, (name, text) in VM_SERIES.items()}
        sampled = GaugeMetricFamily("kvmweb_vm_sample_timestamp_seconds", "When the latest sample was taken",
                                    labels=VM_LABELS)
        for vm in vms:
            labels = [str(vm.uuid), vm.name, vm.host.name, vm.owner.get_username() if vm.owner else ""]
            now = latest.get(str(vm.uuid))
            running.add_metric(labels, 1 if now else 0)
            if now is None:
                continue
            vcpus.add_metric(labels, now.vcpus)
            memory.add_metric(labels, now.mem_bytes)
            sampled.add_metric(labels, now.t)
            for metric, family in families.items():
                value = now.metric(metric)
                if value is not None:
                    family.add_metric(labels, value)
        yield running
        yield vcpus
        yield memory
        yield from families.values()
        yield sampled
        yield from self._hosts()

    @staticmethod
    def _hosts() -> Iterator[GaugeMetricFamily]:
        labels = ["host"]
        up = GaugeMetricFamily("kvmweb_host_collector_up", "1 if the host's collector sampled it lately", labels=labels)
        cpu = GaugeMetricFamily("kvmweb_host_cpu_percent", "Host CPU use in % of all its CPUs", labels=labels)
        used = GaugeMetricFamily("kvmweb_host_memory_used_bytes", "Host memory used (total - free - buffers - cached)",
                                 labels=labels)
        pct = GaugeMetricFamily("kvmweb_host_memory_used_percent", "Host memory used in %", labels=labels)
        total = GaugeMetricFamily("kvmweb_host_memory_bytes", "Host memory", labels=labels)
        cpus = GaugeMetricFamily("kvmweb_host_cpus", "Host CPUs", labels=labels)
        running = GaugeMetricFamily("kvmweb_host_vms_running", "Running VMs on the host", labels=labels)
        for host in Host.objects.order_by("name"):
            h = host_latest(host.pk)
            up.add_metric([host.name], 1 if h else 0)
            if h is None:
                continue
            for family, value in ((cpu, h.cpu_pct), (used, h.mem_used_bytes), (pct, h.mem_pct),
                                  (total, h.mem_total_bytes), (cpus, h.cpus), (running, h.vms_running)):
                if value is not None:
                    family.add_metric([host.name], value)
        yield from (up, cpu, used, pct, total, cpus, running)


def metrics_text() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalMetrics())
    return generate_latest(registry)


class PrometheusTextRenderer(BaseRenderer):
    """Lets a scraper's ``Accept: text/plain`` through content negotiation; errors are rendered as JSON text."""

    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class MetricsView(APIView):
    renderer_classes = [JSONRenderer, PrometheusTextRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        """Scrapers send all kinds of ``Accept``; the answer is the text format whatever they say (errors JSON)."""
        return super().perform_content_negotiation(request, force=True)  # type: ignore[no-any-return]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        require_staff(request.user, "may read the metrics")
        return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
