"""What the flavor and template API shows and takes (the services validate what it takes)."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Flavor, Template


class FlavorSerializer(serializers.ModelSerializer[Flavor]):
    class Meta:
        model = Flavor
        fields = ["id", "name", "vcpus", "memory_mib", "disk_bytes", "description"]


class FlavorInputSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=200)
    vcpus = serializers.IntegerField()
    memory = serializers.CharField(max_length=32, help_text="MiB, or with a unit: '2G', '512M'")
    disk = serializers.CharField(max_length=32, help_text="GiB, or with a unit: '20G', '1T'")
    description = serializers.CharField(max_length=400, required=False, allow_blank=True, default="")


class TemplateSerializer(serializers.ModelSerializer[Template]):
    image = serializers.SerializerMethodField()
    flavor = FlavorSerializer(allow_null=True)
    host = serializers.SerializerMethodField()
    host_id = serializers.IntegerField(source="image.host_id")
    owner = serializers.SerializerMethodField()
    ready = serializers.BooleanField(source="image.complete", help_text="its image is complete: VMs may start "
                                                                         "from it")

    class Meta:
        model = Template
        fields = ["id", "name", "description", "image", "flavor", "host", "host_id", "os_variant", "network",
                  "cloud_init", "clone_mode", "public", "owner", "ready", "created"]

    def get_image(self, template: Template) -> dict[str, Any]:
        image = template.image
        return {"id": image.pk, "name": image.name, "format": image.format, "virtual_size": image.virtual_size}

    def get_host(self, template: Template) -> str:
        return template.image.host.name

    def get_owner(self, template: Template) -> str | None:
        return template.owner.get_username() if template.owner else None


class TemplateInputSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=200)
    image = serializers.IntegerField(required=False, help_text="a disk image of the image library (on create)")
    flavor = serializers.IntegerField(required=False, allow_null=True, default=None)
    os_variant = serializers.CharField(max_length=64, required=False, allow_blank=True, default="",
                                       help_text="osinfo short id; empty: the image's")
    network = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    cloud_init = serializers.BooleanField(required=False, default=True)
    clone_mode = serializers.CharField(max_length=16, required=False, default="linked", help_text="linked or copy")
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    public = serializers.BooleanField(required=False, default=False, help_text="staff: offered to every user")


class TemplateFromVmSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
