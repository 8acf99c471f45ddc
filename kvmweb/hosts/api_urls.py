from django.urls import path

from . import api

urlpatterns = [
    path("hosts/", api.HostListApi.as_view(), name="host-list"),
    path("hosts/ssh-key/", api.PortalKeyApi.as_view(), name="host-ssh-key"),
    path("hosts/<int:pk>/", api.HostDetailApi.as_view(), name="host-detail"),
]
