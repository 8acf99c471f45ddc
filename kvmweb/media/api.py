"""Media library API, the same endpoints for both kinds: list, start an upload, send its pieces (raw bytes, in
order), import a file already on the host (register or copy, as a job), delete. ``/isos/`` is the ISO library,
``/images/`` the image library (whose images staff may also change with PATCH)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb import hypervisor as hv
from kvmweb.core.api import byte_offset, piece_length, request_chunks
from kvmweb.core.errors import PermissionDeniedError, ValidationError
from kvmweb.hosts.selectors import host_get
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.access.permissions import is_staff

from . import services
from .models import IsoImage
from .selectors import image_get, image_list, iso_get, iso_list
from .serializers import (
    ImageImportAcceptedSerializer, ImagePatchSerializer, ImageRegisterSerializer, ImageSerializer,
    ImageUploadBeginSerializer, ImportAcceptedSerializer, IsoSerializer, RegisterSerializer, UploadBeginSerializer,
)


class _Kind:
    """What the endpoints of one kind use: its reads, its serializers and its services."""

    listing: Callable[..., Any] = staticmethod(iso_list)
    getter: Callable[..., IsoImage] = staticmethod(iso_get)
    out: type[serializers.ModelSerializer[IsoImage]] = IsoSerializer
    begin_body: type[serializers.Serializer[dict[str, object]]] = UploadBeginSerializer
    begin: Callable[..., IsoImage] = staticmethod(services.iso_upload_begin)
    register_body: type[serializers.Serializer[dict[str, object]]] = RegisterSerializer
    importer: Callable[..., tuple[IsoImage, Any]] = staticmethod(services.iso_import)
    key = "iso"  # the row's key in an import's answer


class _Image(_Kind):
    listing = staticmethod(image_list)
    getter = staticmethod(image_get)
    out = ImageSerializer
    begin_body = ImageUploadBeginSerializer
    begin = staticmethod(services.image_upload_begin)
    register_body = ImageRegisterSerializer
    importer = staticmethod(services.image_import)
    key = "image"


def _body(serializer: type[serializers.Serializer[dict[str, object]]], request: Request) -> dict[str, Any]:
    body = serializer(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class IsoListApi(_Kind, APIView):
    @extend_schema(parameters=[OpenApiParameter("host", int)], responses=IsoSerializer(many=True),
                   summary="The ISO library")
    def get(self, request: Request) -> Response:
        host_id = request.query_params.get("host", "")
        if host_id and not host_id.isdigit():
            raise ValidationError("host must be a host id.", fields={"host": ["a host id"]})
        rows = self.listing(actor=request.user, host=host_get(int(host_id)) if host_id else None)
        return Response(self.out(rows, many=True).data)

    @extend_schema(request=UploadBeginSerializer, responses={201: IsoSerializer},
                   summary="Start an upload: makes an empty volume of `size` bytes in the host's ISO pool")
    def post(self, request: Request) -> Response:
        data = _body(self.begin_body, request)
        row = self.begin(actor=request.user, **{**data, "host": host_get(data["host"])})
        return Response(self.out(row).data, status=status.HTTP_201_CREATED)


class IsoRegisterApi(_Kind, APIView):
    @extend_schema(request=RegisterSerializer, responses={202: ImportAcceptedSerializer},
                   summary="Staff: add a file already on the host (registered in place, or copied into the ISO "
                           "pool); a job checks it is an ISO image and completes the medium")
    def post(self, request: Request) -> Response:
        if not is_staff(request.user):
            raise PermissionDeniedError("Only staff can register files already on a host.")
        data = _body(self.register_body, request)
        row, job = self.importer(actor=request.user, **{**data, "host": host_get(data["host"])})
        return Response({"job": JobSerializer(job).data, self.key: self.out(row).data},
                        status=status.HTTP_202_ACCEPTED)


class IsoDetailApi(_Kind, APIView):
    @extend_schema(responses=IsoSerializer, summary="One medium")
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.out(self.getter(actor=request.user, pk=pk)).data)

    @extend_schema(responses={204: None}, summary="Delete a medium (refused while a VM uses it)")
    def delete(self, request: Request, pk: int) -> Response:
        services.iso_delete(actor=request.user, iso=self.getter(actor=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class IsoContentApi(_Kind, APIView):
    """PUT raw bytes (``application/octet-stream``) at ``?offset=N``: streamed into the volume, never whole."""

    parser_classes: list = []

    @extend_schema(request={"application/octet-stream": bytes}, parameters=[OpenApiParameter("offset", int)],
                   responses=IsoSerializer, summary="Send the next piece of an upload")
    def put(self, request: Request, pk: int) -> Response:
        row = self.getter(actor=request.user, pk=pk)
        length = piece_length(request._request)  # 400 without a usable Content-Length, 413 above MAX_PIECE
        offset = byte_offset(request.query_params.get("offset"))
        # request._request is the Django request: the body as the server hands it on (core/asgi.py), not spooled
        chunks = request_chunks(request._request, length, hv.STREAM_CHUNK)
        row = services.iso_upload_piece(actor=request.user, iso=row, offset=offset, length=length, chunks=chunks)
        return Response(self.out(row).data)


# -- the image library: the same endpoints over disk images ------------------------------------------------
@extend_schema_view(
    get=extend_schema(parameters=[OpenApiParameter("host", int)], responses=ImageSerializer(many=True),
                      summary="The image library (disk images)"),
    post=extend_schema(request=ImageUploadBeginSerializer, responses={201: ImageSerializer},
                       summary="Start the upload of a disk image (.qcow2, .img, .raw) into the host's image pool; "
                               "the last piece has it checked (qcow2 or raw, no backing file outside the library)"),
)
class ImageListApi(_Image, IsoListApi):
    pass


@extend_schema_view(post=extend_schema(
    request=ImageRegisterSerializer, responses={202: ImageImportAcceptedSerializer},
    summary="Staff: add a disk image already on the host (in place, or copied into the image pool with its kernel "
            "and initrd); a job checks it and completes it"))
class ImageRegisterApi(_Image, IsoRegisterApi):
    pass


@extend_schema_view(
    get=extend_schema(responses=ImageSerializer, summary="One disk image"),
    delete=extend_schema(responses={204: None},
                         summary="Delete a disk image (refused while a VM, a volume or a template uses it)"),
)
class ImageDetailApi(_Image, IsoDetailApi):
    @extend_schema(request=ImagePatchSerializer, responses=ImageSerializer,
                   summary="Staff: rename, publish or unpublish a disk image, change its OS or kernel command line")
    def patch(self, request: Request, pk: int) -> Response:
        image = image_get(actor=request.user, pk=pk)
        if not is_staff(request.user):
            raise PermissionDeniedError("Only staff can change disk images.")
        body = ImagePatchSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        image = services.image_update(actor=request.user, image=image, **body.validated_data)
        return Response(ImageSerializer(image).data)


@extend_schema_view(put=extend_schema(
    request={"application/octet-stream": bytes}, parameters=[OpenApiParameter("offset", int)],
    responses=ImageSerializer, summary="Send the next piece of a disk image's upload"))
class ImageContentApi(_Image, IsoContentApi):
    pass
