from django.urls import path

from . import api

urlpatterns = [
    path("vms/bulk/", api.VmBulkApi.as_view(), name="vm-bulk"),
    path("vms/<uuid:uuid>/", api.VmDetailApi.as_view(), name="vm-detail"),
    path("vms/<uuid:uuid>/start/", api.VmStartApi.as_view(), name="vm-start"),
    path("vms/<uuid:uuid>/shutdown/", api.VmShutdownApi.as_view(), name="vm-shutdown"),
    path("vms/<uuid:uuid>/reboot/", api.VmRebootApi.as_view(), name="vm-reboot"),
    path("vms/<uuid:uuid>/force-off/", api.VmForceOffApi.as_view(), name="vm-force-off"),
    path("vms/<uuid:uuid>/autostart/", api.VmAutostartApi.as_view(), name="vm-autostart"),
    path("vms/<uuid:uuid>/guest/", api.VmGuestApi.as_view(), name="vm-guest"),
    path("vms/<uuid:uuid>/stats/", api.VmStatsApi.as_view(), name="vm-stats"),
    path("vms/<uuid:uuid>/shares/", api.VmSharesApi.as_view(), name="vm-shares"),
    path("vms/<uuid:uuid>/shares/<int:pk>/", api.VmShareApi.as_view(), name="vm-share"),
    path("activity/", api.ActivityApi.as_view(), name="activity-list"),
]
