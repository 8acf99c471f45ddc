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
    url = serializers.CharField()

    @staticmethod
    def from_row(row: VmRow) -> dict[str, Any]:
        return {
            "uuid": row.uuid, "name": row.name, "id": row.id, "state": row.state.slug, "state_label": row.state.label,
            "vcpus": row.vcpus, "memory_kib": row.memory_kib, "max_memory_kib": row.max_memory_kib,
            "host": row.host.name, "owner": row.owner_name, "your_role": row.role.label,
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
