"""REST API for jobs: list (mine; staff: everyone's), detail with the log, cancel."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .selectors import STATES, job_get, job_list, parse_job_filters
from .serializers import JobDetailSerializer, JobSerializer


class JobListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("state", str, enum=STATES), OpenApiParameter("type", str),
                    OpenApiParameter("target", str), OpenApiParameter("mine", bool),
                    OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses=JobSerializer(many=True), summary="List jobs (mine; staff: everyone's)",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params.copy()
        if "type" in params:
            params["kind"] = params["type"]
        jobs = job_list(actor=request.user, **parse_job_filters(params))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)


class JobDetailApi(APIView):
    @extend_schema(responses=JobDetailSerializer, summary="A job with its log")
    def get(self, request: Request, pk: int) -> Response:
        return Response(JobDetailSerializer(job_get(actor=request.user, pk=pk)).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobSerializer, summary="Cancel a queued or running job")
    def post(self, request: Request, pk: int) -> Response:
        job = services.job_cancel(actor=request.user, job=job_get(actor=request.user, pk=pk))
        return Response(JobSerializer(job).data)
