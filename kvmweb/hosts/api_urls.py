from django.urls import path

from . import api

urlpatterns = [
    path("hosts/", api.HostListApi.as_view(), name="host-list"),
    path("hosts/<int:pk>/", api.HostDetailApi.as_view(), name="host-detail"),
]
