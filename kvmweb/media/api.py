"""ISO library API: list, start an upload, send its pieces (raw bytes, in order), import a file already on the host
(register or copy, as a job), delete."""
from __future__ import annotations


from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kvmweb.core.api import byte_offset, piece_length, request_chunks
from kvmweb.core.errors import PermissionDeniedError, ValidationError
from kvmweb.hosts.selectors import host_get
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.access.permissions import is_staff

from . import services
from .selectors import iso_get, iso_list
from .serializers import ImportAcceptedSerializer, IsoSerializer, RegisterSerializer, UploadBeginSerializer

PIECE_READ = 1024 * 1024  # bytes read from the request at a time


class IsoListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("host", int)], responses=IsoSerializer(many=True),
                   summary="The ISO library")
    def get(self, request: Request) -> Response:
        host_id = request.query_params.get("host", "")
        if host_id and not host_id.isdigit():
            raise ValidationError("host must be a host id.", fields={"host": ["a host id"]})
        isos = iso_list(actor=request.user, host=host_get(int(host_id)) if host_id else None)
        return Response(IsoSerializer(isos, many=True).data)

    @extend_schema(request=UploadBeginSerializer, responses={201: IsoSerializer},
                   summary="Start an upload: makes an empty volume of `size` bytes in the host's ISO pool")
    def post(self, request: Request) -> Response:
        body = UploadBeginSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        iso = services.iso_upload_begin(actor=request.user, host=host_get(data["host"]), name=data["name"],
                                        size=data["size"])
        return Response(IsoSerializer(iso).data, status=status.HTTP_201_CREATED)


class IsoRegisterApi(APIView):
    @extend_schema(request=RegisterSerializer, responses={202: ImportAcceptedSerializer},
                   summary="Staff: add a file already on the host (registered in place, or copied into the ISO "
                           "pool); a job checks it is an ISO image and completes the medium")
    def post(self, request: Request) -> Response:
        if not is_staff(request.user):
            raise PermissionDeniedError("Only staff can register files already on a host.")
        body = RegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        iso, job = services.iso_import(actor=request.user, host=host_get(data["host"]), path=data["path"],
                                       name=data.get("name", ""), mode=data["mode"])
        return Response({"job": JobSerializer(job).data, "iso": IsoSerializer(iso).data},
                        status=status.HTTP_202_ACCEPTED)


class IsoDetailApi(APIView):
    @extend_schema(responses=IsoSerializer, summary="One medium")
    def get(self, request: Request, pk: int) -> Response:
        return Response(IsoSerializer(iso_get(actor=request.user, pk=pk)).data)

    @extend_schema(responses={204: None}, summary="Delete a medium (refused while a VM uses it)")
    def delete(self, request: Request, pk: int) -> Response:
        services.iso_delete(actor=request.user, iso=iso_get(actor=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class IsoContentApi(APIView):
    """PUT raw bytes (``application/octet-stream``) at ``?offset=N``: streamed into the volume, never whole."""

    parser_classes: list = []

    @extend_schema(request={"application/octet-stream": bytes}, parameters=[OpenApiParameter("offset", int)],
                   responses=IsoSerializer, summary="Send the next piece of an upload")
    def put(self, request: Request, pk: int) -> Response:
        iso = iso_get(actor=request.user, pk=pk)
        length = piece_length(request._request)  # 400 without a usable Content-Length, 413 above MAX_PIECE
        offset = byte_offset(request.query_params.get("offset"))
        # request._request is the Django request: a file-like stream of the body (not parsed, not buffered)
        chunks = request_chunks(request._request, length, PIECE_READ)
        iso = services.iso_upload_piece(actor=request.user, iso=iso, offset=offset, length=length, chunks=chunks)
        return Response(IsoSerializer(iso).data)
