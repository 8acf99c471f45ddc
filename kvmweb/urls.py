from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from kvmweb.hosts import api as hosts_api
from kvmweb.machines import api as machines_api

api_v1 = [
    path("hosts/", hosts_api.HostListApi.as_view(), name="host-list"),
    path("hosts/<int:pk>/", hosts_api.HostDetailApi.as_view(), name="host-detail"),
    path("vms/", machines_api.VmListApi.as_view(), name="vm-list"),
    path("vms/<uuid:uuid>/", machines_api.VmDetailApi.as_view(), name="vm-detail"),
    path("vms/<uuid:uuid>/start/", machines_api.VmStartApi.as_view(), name="vm-start"),
    path("vms/<uuid:uuid>/shutdown/", machines_api.VmShutdownApi.as_view(), name="vm-shutdown"),
    path("vms/<uuid:uuid>/reboot/", machines_api.VmRebootApi.as_view(), name="vm-reboot"),
    path("vms/<uuid:uuid>/force-off/", machines_api.VmForceOffApi.as_view(), name="vm-force-off"),
    path("vms/<uuid:uuid>/autostart/", machines_api.VmAutostartApi.as_view(), name="vm-autostart"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="machines:list", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("vms/", include("kvmweb.machines.urls")),
    path("hosts/", include("kvmweb.hosts.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
