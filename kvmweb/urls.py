from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from kvmweb.accounts.views import LoginView, admin_login_view
from kvmweb.core.api_views import ApiDocsView, ApiIndexApi
from kvmweb.machines.api import VmListApi
from kvmweb.machines.metrics import MetricsView
from kvmweb.provisioning.api import VmCreateApi

# Each app owns its pages (<app>/urls.py) and its API endpoints (<app>/api_urls.py, all under /api/v1/).
APPS = ["machines", "hosts", "jobs", "storage", "networks", "console", "media", "accounts", "dashboard",
        "provisioning", "protection", "fleet"]


class VmCollectionApi(VmCreateApi, VmListApi):
    """``/api/v1/vms/``: GET lists VMs (the machines app), POST creates one (the provisioning app)."""


api_v1 = [
    path("", ApiIndexApi.as_view(), name="index"),
    path("vms/", VmCollectionApi.as_view(), name="vm-list"),
    *[path("", include(f"kvmweb.{app}.api_urls")) for app in APPS],
]

urlpatterns = [
    path("", include("kvmweb.dashboard.urls")),  # the landing page ("home") and its live parts
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True), name="favicon"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("kvmweb.accounts.urls")),
    path("vms/new/", include("kvmweb.provisioning.urls")),
    path("templates/", include("kvmweb.provisioning.catalog_urls")),
    path("vms/", include("kvmweb.machines.urls")),
    path("hosts/", include("kvmweb.hosts.urls")),
    path("jobs/", include("kvmweb.jobs.urls")),
    path("storage/", include("kvmweb.storage.urls")),
    path("networks/", include("kvmweb.networks.urls")),
    path("console/", include("kvmweb.console.urls")),
    path("media-library/", include("kvmweb.media.urls")),
    path("protection/", include("kvmweb.protection.urls")),  # snapshots and backups (sections of a VM's page)
    path("fleet/", include("kvmweb.fleet.urls")),  # moving VMs between hosts, maintenance (parts of other pages)
    path("activity/", include("kvmweb.machines.activity_urls")),
    # one login for everyone (the lockout and the second factor apply to staff too)
    path("admin/login/", admin_login_view, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", MetricsView.as_view(), name="metrics"),  # Prometheus, staff only (docs/monitoring.md)
]

# Error pages (core.handlers): the portal's page, or JSON under /api/.
handler400 = "kvmweb.core.handlers.bad_request"
handler403 = "kvmweb.core.handlers.permission_denied"
handler404 = "kvmweb.core.handlers.page_not_found"
handler500 = "kvmweb.core.handlers.server_error"
