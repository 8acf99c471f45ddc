"""Input validation for the storage API, and the JSON shapes of pools, volumes and disks."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from kvmweb import hypervisor as hv
from kvmweb.core.api import MAX_PIECE
from kvmweb.jobs.serializers import JobSerializer

from .selectors import DiskRow, PoolRow, VmDisks, VolumeRow
from .services import ResizeResult, UploadState


class PoolDefineSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=64)
    path = serializers.CharField(max_length=1024, help_text="absolute folder, created when missing")
    autostart = serializers.BooleanField(default=True)


class PoolAccessSerializer(serializers.Serializer):  # type: ignore[type-arg]
    everyone = serializers.BooleanField(default=False)
    users = serializers.ListField(child=serializers.CharField(max_length=150), default=list,
                                  help_text="user names")


class EnabledSerializer(serializers.Serializer):  # type: ignore[type-arg]
    enabled = serializers.BooleanField()


class VolumeCreateSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=64)
    size = serializers.CharField(max_length=32, help_text='"20G", "512M", "1.5T"')
    format = serializers.ChoiceField(choices=list(hv.VOLUME_FORMATS), default="qcow2")


class VolumeUploadBeginSerializer(serializers.Serializer):  # type: ignore[type-arg]
    size = serializers.IntegerField(help_text="the image file's size in bytes")


class VolumeUploadSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """Where an upload in pieces stands: PUT the next piece at ``offset``."""

    pool = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField(help_text="announced bytes")
    offset = serializers.IntegerField(source="received", help_text="bytes received: the next piece's offset")
    complete = serializers.BooleanField()
    max_piece = serializers.SerializerMethodField(help_text="the most bytes one piece may carry")
    job = JobSerializer()
    volume = serializers.SerializerMethodField(help_text="the new volume, once the last piece is in")

    def get_max_piece(self, state: UploadState) -> int:
        return MAX_PIECE

    def get_volume(self, state: UploadState) -> dict[str, Any] | None:
        return volume_json(state.info) if state.info is not None else None


class ResizeSerializer(serializers.Serializer):  # type: ignore[type-arg]
    size = serializers.CharField(max_length=32, help_text='"+10G" (grow by) or "30G" (new size); grow only')


class DiskResizeSerializer(ResizeSerializer):
    target = serializers.CharField(max_length=16)


class DiskAttachSerializer(serializers.Serializer):  # type: ignore[type-arg]
    pool = serializers.CharField(max_length=64)
    volume = serializers.CharField(max_length=64)
    new = serializers.BooleanField(default=False, help_text="create the volume first")
    size = serializers.CharField(max_length=32, required=False, allow_blank=True)
    format = serializers.ChoiceField(choices=list(hv.VOLUME_FORMATS), default="qcow2")
    bus = serializers.ChoiceField(choices=list(hv.DISK_BUSES), default="virtio")


class TargetSerializer(serializers.Serializer):  # type: ignore[type-arg]
    target = serializers.CharField(max_length=16)


class BusSerializer(TargetSerializer):
    bus = serializers.ChoiceField(choices=list(hv.DISK_BUSES))


class CdromSerializer(TargetSerializer):
    iso = serializers.IntegerField(required=False, help_text="id of a medium of the ISO library")
    pool = serializers.CharField(max_length=64, required=False, allow_blank=True)
    volume = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                   help_text="an *.iso volume of that pool; give neither iso nor volume to eject")


class CdromAddSerializer(serializers.Serializer):  # type: ignore[type-arg]
    bus = serializers.ChoiceField(choices=["", *hv.CDROM_BUSES], required=False, default="",
                                  help_text="empty: the machine's own (sata on q35, ide on i440fx)")
    iso = serializers.IntegerField(required=False, help_text="id of a medium of the ISO library to load")
    pool = serializers.CharField(max_length=64, required=False, allow_blank=True)
    volume = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                   help_text="an *.iso volume of that pool to load; give neither for an empty drive")


class BootOrderSerializer(serializers.Serializer):  # type: ignore[type-arg]
    order = serializers.ListField(child=serializers.ChoiceField(choices=["cdrom", "hd", "network"]),
                                  min_length=1, max_length=3)


class CloneSerializer(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                 help_text="empty: '<source>-clone'")
    mode = serializers.ChoiceField(choices=["full", "linked"], default="full")
    pause_source = serializers.BooleanField(default=False, help_text="pause a running source during the copy")


def pool_json(row: PoolRow | hv.PoolInfo) -> dict[str, Any]:
    info = row.info if isinstance(row, PoolRow) else row
    data: dict[str, Any] = {
        "name": info.name, "uuid": info.uuid, "type": info.type, "state": info.state.slug,
        "persistent": info.persistent, "autostart": info.autostart, "capacity": info.capacity,
        "allocation": info.allocation, "available": info.available, "path": info.target_path,
    }
    if isinstance(row, PoolRow):
        data["open_to"] = (
            None if row.access is None
            else "everyone" if row.access.everyone
            else [u.get_username() for u in row.access.users.all()]
        )
    return data


def volume_json(row: VolumeRow | hv.VolumeInfo) -> dict[str, Any]:
    info = row.info if isinstance(row, VolumeRow) else row
    data: dict[str, Any] = {
        "pool": info.pool, "name": info.name, "path": info.path, "format": info.format,
        "capacity": info.capacity, "allocation": info.allocation, "backing_file": info.backing_path,
    }
    if isinstance(row, VolumeRow):
        data["used_by"] = [{"uuid": u.domain_uuid, "name": u.domain_name, "target": u.target}
                           for u in row.visible_users]
        data["used_by_others"] = row.names.hidden  # VMs the reader may not see: counted, never named
        data["owner"] = row.owner_name or None
    return data


def disk_json(row: DiskRow) -> dict[str, Any]:
    disk = row.disk
    return {
        "target": disk.target, "device": disk.device, "bus": disk.bus, "source": disk.source,
        "format": disk.format, "readonly": disk.readonly or disk.device == "cdrom",
        "volume": volume_json(row.volume) if row.volume else None,
    }


def vm_disks_json(disks: VmDisks) -> dict[str, Any]:
    return {"running": disks.running, "boot_order": disks.boot, "disks": [disk_json(d) for d in disks.disks],
            "next_boot": {"added": [disk_json(DiskRow(disk=d, volume=None)) for d in disks.next_boot],
                          "removed": disks.leaving}}


def resize_json(result: ResizeResult) -> dict[str, Any]:
    return {"volume": result.volume, "old_capacity": result.old_capacity, "new_capacity": result.new_capacity,
            "online": result.online, "guest": result.guest_note, "detail": result.message}
