from __future__ import annotations

from typing import Any

from rest_framework import serializers

from kvmweb.audit.models import AuditEntry

from .selectors import ShareRow, VmDetail, VmRow


class VmSummarySerializer(serializers.Serializer):
    uuid = serializers.CharField()
    name = serializers.CharField()
    id = serializers.IntegerField(allow_null=True, help_text="libvirt's domain id while running")
    state = serializers.CharField(help_text="running, shutoff, paused, ... (virsh's words in state_label)")
    state_label = serializers.CharField()
    vcpus = serializers.IntegerField(allow_null=True)
    memory_kib = serializers.IntegerField(allow_null=True)
    max_memory_kib = serializers.IntegerField(allow_null=True)
    host = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    your_role = serializers.CharField(help_text="owner, staff, manager, operator or viewer")
    cpu_pct = serializers.FloatField(allow_null=True, help_text="latest CPU use, % of its vCPUs (running VMs)")
    mem_used_bytes = serializers.FloatField(allow_null=True, help_text="latest memory in use (running VMs)")
    mem_pct = serializers.FloatField(allow_null=True, help_text="latest memory in use, % of its current memory")
    url = serializers.CharField()

    @staticmethod
    def from_row(row: VmRow) -> dict[str, Any]:
        return {
            "uuid": row.uuid, "name": row.name, "id": row.id, "state": row.state.slug, "state_label": row.state.label,
            "vcpus": row.vcpus, "memory_kib": row.memory_kib, "max_memory_kib": row.max_memory_kib,
            "host": row.host.name, "owner": row.owner_name, "your_role": row.role.label,
            "cpu_pct": row.cpu_pct, "mem_used_bytes": row.mem_used_bytes, "mem_pct": row.mem_pct,
            "url": f"/api/v1/vms/{row.uuid}/",
        }


class BlockDeviceSerializer(serializers.Serializer):
    target = serializers.CharField()
    source = serializers.CharField(allow_null=True)
    device = serializers.CharField()
    type = serializers.CharField()
    bus = serializers.CharField()
    format = serializers.CharField(allow_null=True)


class VmDetailSerializer(serializers.Serializer):
    """``virsh dominfo`` + ``domblklist`` + ``vncdisplay``."""

    uuid = serializers.CharField()
    name = serializers.CharField()
    id = serializers.IntegerField(allow_null=True)
    os_type = serializers.CharField()
    state = serializers.CharField()
    state_label = serializers.CharField()
    vcpus = serializers.IntegerField()
    cpu_time_ns = serializers.IntegerField()
    max_memory_kib = serializers.IntegerField()
    used_memory_kib = serializers.IntegerField()
    persistent = serializers.BooleanField()
    autostart = serializers.BooleanField()
    managed_save = serializers.BooleanField()
    security_model = serializers.CharField()
    security_doi = serializers.CharField()
    host = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    your_role = serializers.CharField(
        help_text="what you may do with it: owner, staff (everything), manager, operator or viewer (a share)")
    notes = serializers.CharField()
    block_devices = BlockDeviceSerializer(many=True)
    vnc_display = serializers.CharField(allow_null=True, help_text="host:display, or null (console via portal only)")
    vnc_listen = serializers.CharField(allow_null=True, help_text="none, address or socket; null: no VNC graphics")

    @staticmethod
    def from_detail(detail: VmDetail) -> dict[str, Any]:
        i = detail.info
        return {
            "uuid": i.uuid, "name": i.name, "id": i.id, "os_type": i.os_type, "state": i.state.slug,
            "state_label": i.state.label, "vcpus": i.vcpus, "cpu_time_ns": i.cpu_time_ns,
            "max_memory_kib": i.max_memory_kib, "used_memory_kib": i.used_memory_kib, "persistent": i.persistent,
            "autostart": i.autostart, "managed_save": i.managed_save, "security_model": i.security_model,
            "security_doi": i.security_doi, "host": detail.record.host.name,
            "owner": detail.record.owner.get_username() if detail.record.owner else None,
            "your_role": detail.role.label, "notes": detail.record.notes,
            "block_devices": [{"target": b.target, "source": b.source, "device": b.device, "type": b.type,
                               "bus": b.bus, "format": b.format} for b in detail.disks],
            "vnc_display": detail.vnc.display if detail.vnc else None,
            "vnc_listen": detail.vnc.listen if detail.vnc else None,
        }


class AutostartSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()


class DeleteResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    deleted_volumes = serializers.ListField(child=serializers.CharField())
    kept = serializers.ListField(child=serializers.CharField())
    failed = serializers.ListField(child=serializers.CharField())


class ActionResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    state = serializers.CharField()


class BulkSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["start", "shutdown", "reboot", "force-off"])
    uuids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=200)


class BulkItemSerializer(serializers.Serializer):
    uuid = serializers.CharField()
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class BulkResultSerializer(serializers.Serializer):
    detail = serializers.CharField()
    action = serializers.CharField()
    results = BulkItemSerializer(many=True)


class ShutdownSerializer(serializers.Serializer):
    """The body of ``POST /api/v1/vms/{uuid}/shutdown/``: none for the plain ACPI request."""

    force_after = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=3600,
        help_text="force the VM off if it is still running after this many seconds (a vm.shutdown job; 202)")


class ShareSerializer(serializers.Serializer):
    """A share of a VM: with one user or one group (by name), and a role."""

    id = serializers.IntegerField(read_only=True)
    user = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=150)
    group = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=150)
    role = serializers.ChoiceField(choices=["viewer", "operator", "manager"])
    created_by = serializers.CharField(read_only=True, allow_null=True)
    created = serializers.DateTimeField(read_only=True)

    @staticmethod
    def from_row(row: ShareRow) -> dict[str, Any]:
        return {"id": row.id, "user": row.name if row.kind == "user" else None,
                "group": row.name if row.kind == "group" else None, "role": row.role,
                "created_by": row.created_by, "created": row.created.isoformat()}


class ShareRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["viewer", "operator", "manager"])


class ActivitySerializer(serializers.Serializer):
    """One audit entry: who did what to which object, when, and how it ended."""

    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    user = serializers.CharField(allow_null=True, help_text="who did it (null: the system)")
    action = serializers.CharField()
    target_type = serializers.CharField()
    target = serializers.CharField()
    vm = serializers.CharField(allow_null=True, help_text="the VM's UUID, for entries about a VM")
    host = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()

    @staticmethod
    def from_entry(e: AuditEntry) -> dict[str, Any]:
        return {"id": e.pk, "created": e.created.isoformat(), "user": e.actor.get_username() if e.actor else e.actor_name or None,
                "action": e.action, "target_type": e.target_type, "target": e.target,
                "vm": e.target_id or None if e.target_type == "vm" else None, "host": e.host, "ok": e.ok,
                "detail": e.detail}


class VmStatsSerializer(serializers.Serializer):
    """A VM's usage history over one range: ``t`` (epoch seconds, one per step) and, per metric, one value per
    ``t`` (null: no sample in that step — the VM was off, or nobody measured)."""

    range = serializers.CharField(help_text="1h (5 s steps), 1d (1 min steps) or 30d (30 min steps)")
    step = serializers.IntegerField(help_text="seconds between two points")
    t = serializers.ListField(child=serializers.IntegerField(), help_text="each point's time, epoch seconds")
    values = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="metric → values: cpu_pct, cpu_host_pct (%), mem_used_bytes, mem_pct, disk_rd_bps, disk_wr_bps, "
                  "disk_rd_iops, disk_wr_iops, net_rx_bps, net_tx_bps (bytes or requests per second)")

    @staticmethod
    def from_series(series: Any) -> dict[str, Any]:
        return {"range": series.range, "step": series.step, "t": list(series.t),
                "values": {k: list(v) for k, v in series.values.items()}}


class GuestInterfaceSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="the guest's name for it (agent) or the host's tap device (lease)")
    mac = serializers.CharField()
    addresses = serializers.ListField(child=serializers.CharField(), help_text="address/prefix, IPv4 first")
    source = serializers.ChoiceField(choices=["agent", "lease"])


class GuestFilesystemSerializer(serializers.Serializer):
    mountpoint = serializers.CharField()
    type = serializers.CharField()
    device = serializers.CharField()
    used_bytes = serializers.IntegerField(allow_null=True)
    total_bytes = serializers.IntegerField(allow_null=True)


class GuestInfoSerializer(serializers.Serializer):
    """What the guest agent says; without an answer, ``agent`` is false, ``error`` says why and the interfaces come
    from the DHCP leases of libvirt's networks."""

    agent = serializers.BooleanField(help_text="the guest agent answered")
    running = serializers.BooleanField()
    error = serializers.CharField(help_text="why the agent gave nothing (empty when it answered)")
    os_name = serializers.CharField()
    os_id = serializers.CharField()
    os_version = serializers.CharField()
    kernel = serializers.CharField()
    machine = serializers.CharField()
    hostname = serializers.CharField()
    interfaces = GuestInterfaceSerializer(many=True)
    filesystems = GuestFilesystemSerializer(many=True)
    read_at = serializers.DateTimeField(help_text="when it was read (answers are reused for a short while)")

    @staticmethod
    def from_guest(guest: Any) -> dict[str, Any]:
        g = guest.info
        return {
            "agent": g.agent, "running": g.running, "error": g.error, "os_name": g.os_name, "os_id": g.os_id,
            "os_version": g.os_version, "kernel": g.kernel, "machine": g.machine, "hostname": g.hostname,
            "interfaces": [{"name": n.name, "mac": n.mac, "addresses": list(n.addresses), "source": n.source}
                           for n in g.interfaces],
            "filesystems": [{"mountpoint": f.mountpoint, "type": f.type, "device": f.device,
                             "used_bytes": f.used_bytes, "total_bytes": f.total_bytes} for f in g.filesystems],
            "read_at": guest.read_at.isoformat(),
        }
