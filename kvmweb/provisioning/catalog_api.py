"""``/api/v1/flavors/``, ``/api/v1/templates/`` and ``POST /api/v1/vms/{uuid}/template/``: thin; the services in
``catalog.py`` check permissions and validate."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from kvmweb.core.errors import ValidationError
from kvmweb.hosts.selectors import host_get
from kvmweb.jobs.serializers import JobSerializer
from kvmweb.machines.selectors import vm_get

from . import catalog
from .catalog import MiB
from .models import Flavor, Template
from .selectors import flavor_get, flavor_list, template_get, template_list
from .serializers import (
    FlavorInputSerializer,
    FlavorSerializer,
    TemplateFromVmSerializer,
    TemplateInputSerializer,
    TemplateSerializer,
)


def _body(serializer_class: type[Serializer[Any]], request: Request, *, partial: bool = False) -> dict[str, Any]:
    body = serializer_class(data=request.data, partial=partial)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


# ------------------------------------------------------------------------------------------------ flavors
class FlavorListApi(APIView):
    @extend_schema(responses=FlavorSerializer(many=True), summary="The flavors (named sizes)")
    def get(self, request: Request) -> Response:
        return Response(FlavorSerializer(flavor_list(), many=True).data)

    @extend_schema(request=FlavorInputSerializer, responses={201: FlavorSerializer}, summary="Staff: add a flavor")
    def post(self, request: Request) -> Response:
        result = catalog.flavor_create(actor=request.user, **_body(FlavorInputSerializer, request))
        return Response({**FlavorSerializer(result.flavor).data, "detail": result.message},
                        status=status.HTTP_201_CREATED)


def _flavor_fields(flavor: Flavor, body: dict[str, Any]) -> dict[str, Any]:
    current = {"name": flavor.name, "vcpus": flavor.vcpus, "memory": catalog.size_text(flavor.memory_mib * MiB),
               "disk": catalog.size_text(flavor.disk_bytes), "description": flavor.description}
    return {**current, **body}


class FlavorDetailApi(APIView):
    @extend_schema(responses=FlavorSerializer, summary="One flavor")
    def get(self, request: Request, pk: int) -> Response:
        return Response(FlavorSerializer(flavor_get(pk)).data)

    @extend_schema(request=FlavorInputSerializer, responses=FlavorSerializer, summary="Staff: change a flavor")
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=FlavorInputSerializer, responses=FlavorSerializer,
                   summary="Staff: change some fields of a flavor")
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: int, *, partial: bool) -> Response:
        flavor = flavor_get(pk)
        body = _body(FlavorInputSerializer, request, partial=partial)
        result = catalog.flavor_update(actor=request.user, flavor=flavor, **_flavor_fields(flavor, body))
        return Response({**FlavorSerializer(result.flavor).data, "detail": result.message})

    @extend_schema(responses={204: None}, summary="Staff: delete a flavor (refused while a template uses it)")
    def delete(self, request: Request, pk: int) -> Response:
        catalog.flavor_delete(actor=request.user, flavor=flavor_get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------------------------ templates
class TemplateListApi(APIView):
    @extend_schema(parameters=[OpenApiParameter("host", int)], responses=TemplateSerializer(many=True),
                   summary="The templates open to you: the public ones and your own")
    def get(self, request: Request) -> Response:
        host_id = request.query_params.get("host", "")
        if host_id and not host_id.isdigit():
            raise ValidationError("host must be a host id.", fields={"host": ["a host id"]})
        templates = template_list(actor=request.user, host=host_get(int(host_id)) if host_id else None)
        return Response(TemplateSerializer(templates, many=True).data)

    @extend_schema(request=TemplateInputSerializer, responses={201: TemplateSerializer},
                   summary="Staff: add a template made of a disk image of the library")
    def post(self, request: Request) -> Response:
        body = _body(TemplateInputSerializer, request)
        body["os_variant_id"] = body.pop("os_variant")
        result = catalog.template_create(actor=request.user, **body)
        return Response({**TemplateSerializer(result.template).data, "detail": result.message},
                        status=status.HTTP_201_CREATED)


def _template_fields(template: Template, body: dict[str, Any]) -> dict[str, Any]:
    current = {"name": template.name, "flavor": template.flavor_id, "os_variant_id": template.os_variant,
               "network": template.network, "cloud_init": template.cloud_init, "clone_mode": template.clone_mode,
               "description": template.description}
    if "os_variant" in body:
        body["os_variant_id"] = body.pop("os_variant")
    body.pop("image", None)  # a template keeps its image
    return {**current, **body}


class TemplateDetailApi(APIView):
    @extend_schema(responses=TemplateSerializer, summary="One template")
    def get(self, request: Request, pk: int) -> Response:
        return Response(TemplateSerializer(template_get(actor=request.user, pk=pk)).data)

    @extend_schema(request=TemplateInputSerializer, responses=TemplateSerializer,
                   summary="Change a template (staff: any; you: your own private ones); `public` publishes it (staff)")
    def put(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=False)

    @extend_schema(request=TemplateInputSerializer, responses=TemplateSerializer,
                   summary="Change some fields of a template; `public` alone publishes or unpublishes it (staff)")
    def patch(self, request: Request, pk: int) -> Response:
        return self._update(request, pk, partial=True)

    def _update(self, request: Request, pk: int, *, partial: bool) -> Response:
        template = template_get(actor=request.user, pk=pk)
        body = _body(TemplateInputSerializer, request, partial=partial)
        given = body.pop("public", None)
        public = given if "public" in request.data else None  # publishing changes only when asked
        messages = []
        if set(body) - {"image"}:
            result = catalog.template_update(actor=request.user, template=template,
                                             **_template_fields(template, body))
            template, messages = result.template, [result.message]
        if public is not None and public != template.public:
            result = catalog.template_publish(actor=request.user, template=template, public=public)
            template, messages = result.template, [*messages, result.message]
        return Response({**TemplateSerializer(template).data, "detail": " ".join(messages) or "Nothing to change."})

    @extend_schema(responses={204: None}, summary="Delete a template (staff: any; you: your own private ones, with "
                                                  "the image made for it)")
    def delete(self, request: Request, pk: int) -> Response:
        catalog.template_delete(actor=request.user, template=template_get(actor=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class VmTemplateApi(APIView):
    @extend_schema(request=TemplateFromVmSerializer, responses={202: JobSerializer}, summary=(
        "Make a private template of a shut-off VM: a job copies its first disk into the image library"))
    def post(self, request: Request, uuid: str) -> Response:
        vm = vm_get(actor=request.user, uuid=uuid)
        body = _body(TemplateFromVmSerializer, request)
        result = catalog.template_from_vm(actor=request.user, vm=vm, **body)
        return Response({"detail": result.message, "template": TemplateSerializer(result.template).data,
                         "job": JobSerializer(result.job).data}, status=status.HTTP_202_ACCEPTED)


