from django.urls import path

from . import api

urlpatterns = [
    path("isos/", api.IsoListApi.as_view(), name="iso-list"),
    path("isos/register/", api.IsoRegisterApi.as_view(), name="iso-register"),
    path("isos/<int:pk>/", api.IsoDetailApi.as_view(), name="iso-detail"),
    path("isos/<int:pk>/content/", api.IsoContentApi.as_view(), name="iso-content"),
]
