from django.urls import path

from . import api

urlpatterns = [
    path("isos/", api.IsoListApi.as_view(), name="iso-list"),
    path("isos/register/", api.IsoRegisterApi.as_view(), name="iso-register"),
    path("isos/<int:pk>/", api.IsoDetailApi.as_view(), name="iso-detail"),
    path("isos/<int:pk>/content/", api.IsoContentApi.as_view(), name="iso-content"),
    path("images/", api.ImageListApi.as_view(), name="image-list"),
    path("images/register/", api.ImageRegisterApi.as_view(), name="image-register"),
    path("images/<int:pk>/", api.ImageDetailApi.as_view(), name="image-detail"),
    path("images/<int:pk>/content/", api.ImageContentApi.as_view(), name="image-content"),
]
