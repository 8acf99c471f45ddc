from django.urls import path

from . import api

urlpatterns = [
    path("networks/", api.NetworkListApi.as_view(), name="network-list"),
    path("hosts/<int:host_id>/networks/<str:name>/", api.NetworkDetailApi.as_view(), name="network-detail"),
    path("hosts/<int:host_id>/networks/<str:name>/start/", api.NetworkStartApi.as_view(), name="network-start"),
    path("hosts/<int:host_id>/networks/<str:name>/stop/", api.NetworkStopApi.as_view(), name="network-stop"),
    path("hosts/<int:host_id>/networks/<str:name>/autostart/", api.NetworkAutostartApi.as_view(),
         name="network-autostart"),
    path("hosts/<int:host_id>/networks/<str:name>/access/", api.NetworkAccessApi.as_view(), name="network-access"),
    path("vms/<uuid:uuid>/nics/", api.VmNicListApi.as_view(), name="vm-nic-list"),
    path("vms/<uuid:uuid>/nics/detach/", api.VmNicDetachApi.as_view(), name="vm-nic-detach"),
    path("vms/<uuid:uuid>/nics/link/", api.VmNicLinkApi.as_view(), name="vm-nic-link"),
]
