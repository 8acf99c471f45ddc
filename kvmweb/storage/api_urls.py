from django.urls import path

from . import api

POOL = "hosts/<int:host_id>/pools/<str:name>/"
VOLUME = POOL + "volumes/<str:volume>/"

urlpatterns = [
    path("hosts/<int:host_id>/pools/", api.PoolListApi.as_view(), name="pool-list"),
    path(POOL, api.PoolDetailApi.as_view(), name="pool-detail"),
    path(POOL + "start/", api.PoolStartApi.as_view(), name="pool-start"),
    path(POOL + "stop/", api.PoolStopApi.as_view(), name="pool-stop"),
    path(POOL + "refresh/", api.PoolRefreshApi.as_view(), name="pool-refresh"),
    path(POOL + "autostart/", api.PoolAutostartApi.as_view(), name="pool-autostart"),
    path(POOL + "access/", api.PoolAccessApi.as_view(), name="pool-access"),
    path(POOL + "volumes/", api.VolumeListApi.as_view(), name="volume-list"),
    path(VOLUME, api.VolumeDetailApi.as_view(), name="volume-detail"),
    path(VOLUME + "resize/", api.VolumeResizeApi.as_view(), name="volume-resize"),
    path(VOLUME + "download/", api.VolumeDownloadApi.as_view(), name="volume-download"),
    path(VOLUME + "upload/", api.VolumeUploadApi.as_view(), name="volume-upload"),
    path("vms/<uuid:uuid>/disks/", api.VmDisksApi.as_view(), name="vm-disks"),
    path("vms/<uuid:uuid>/disks/detach/", api.VmDiskDetachApi.as_view(), name="vm-disk-detach"),
    path("vms/<uuid:uuid>/disks/resize/", api.VmDiskResizeApi.as_view(), name="vm-disk-resize"),
    path("vms/<uuid:uuid>/disks/bus/", api.VmDiskBusApi.as_view(), name="vm-disk-bus"),
    path("vms/<uuid:uuid>/cdrom/", api.VmCdromApi.as_view(), name="vm-cdrom"),
    path("vms/<uuid:uuid>/disks/cdrom/", api.VmCdromAddApi.as_view(), name="vm-cdrom-add"),
    path("vms/<uuid:uuid>/disks/cdrom/remove/", api.VmCdromRemoveApi.as_view(), name="vm-cdrom-remove"),
    path("vms/<uuid:uuid>/boot-order/", api.VmBootOrderApi.as_view(), name="vm-boot-order"),
]
urlpatterns.append(path("vms/<uuid:uuid>/clone/", api.VmCloneApi.as_view(), name="vm-clone"))
