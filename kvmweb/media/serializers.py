from __future__ import annotations

from rest_framework import serializers

from kvmweb.jobs.serializers import JobSerializer

from .models import IsoImage


class IsoSerializer(serializers.ModelSerializer[IsoImage]):
    host = serializers.CharField(source="host.name")
    added_by = serializers.SerializerMethodField()
    job = serializers.SerializerMethodField(help_text="the job that brought it in (its upload or import), if any")

    class Meta:
        model = IsoImage
        fields = ["id", "host", "name", "path", "pool", "size", "uploaded", "complete", "registered", "added_by",
                  "added", "job"]

    def get_added_by(self, iso: IsoImage) -> str | None:
        return iso.added_by.get_username() if iso.added_by else None

    def get_job(self, iso: IsoImage) -> int | None:
        from .services import iso_job

        job = iso_job(iso)
        return job.pk if job else None


class ImageSerializer(IsoSerializer):
    class Meta(IsoSerializer.Meta):
        fields = [*IsoSerializer.Meta.fields, "format", "virtual_size", "public", "os_variant", "kernel", "initrd",
                  "cmdline"]


class ImageOptionsSerializer(serializers.Serializer[dict[str, object]]):
    """What a disk image carries besides its file (upload, import; staff change them with PATCH)."""

    public = serializers.BooleanField(required=False, allow_null=True, default=None,
                                      help_text="offered to every user (staff only); default: staff's images are")
    os_variant = serializers.CharField(max_length=64, required=False, allow_blank=True,
                                       help_text="osinfo short id, e.g. debian12")
    cmdline = serializers.CharField(max_length=1024, required=False, allow_blank=True,
                                    help_text="direct kernel boot: the kernel's arguments")


class ImagePatchSerializer(ImageOptionsSerializer):
    name = serializers.CharField(max_length=200, required=False)


class UploadBeginSerializer(serializers.Serializer[dict[str, object]]):
    host = serializers.IntegerField()
    name = serializers.CharField(max_length=200)
    size = serializers.IntegerField(min_value=1)


class RegisterSerializer(serializers.Serializer[dict[str, object]]):
    host = serializers.IntegerField()
    path = serializers.CharField(max_length=1024)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    mode = serializers.ChoiceField(choices=["register", "copy"], default="register",
                                   help_text="register: the file stays where it is; copy: the library gets its own "
                                             "copy in the portal's ISO pool")


class ImageUploadBeginSerializer(UploadBeginSerializer, ImageOptionsSerializer):
    pass


class ImageRegisterSerializer(RegisterSerializer, ImageOptionsSerializer):
    kernel = serializers.CharField(max_length=1024, required=False, allow_blank=True,
                                   help_text="direct kernel boot: a kernel file on the host")
    initrd = serializers.CharField(max_length=1024, required=False, allow_blank=True,
                                   help_text="direct kernel boot: an initrd file on the host")


class ImportAcceptedSerializer(serializers.Serializer[dict[str, object]]):
    job = JobSerializer()
    iso = IsoSerializer()


class ImageImportAcceptedSerializer(serializers.Serializer[dict[str, object]]):
    job = JobSerializer()
    image = ImageSerializer()
