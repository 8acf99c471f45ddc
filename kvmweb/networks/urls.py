from django.urls import path

from . import views

app_name = "networks"

urlpatterns = [
    path("", views.network_list_view, name="list"),
    path("new/", views.network_new_view, name="new"),
    path("<int:host_id>/<str:name>/", views.network_detail_view, name="detail"),
    path("<int:host_id>/<str:name>/delete/", views.network_delete_view, name="delete"),
    *[
        path(f"<int:host_id>/<str:name>/{action}/", views.network_action_view, {"action": action}, name=action)
        for action in views.ACTION_NAMES
    ],
    path("vm/<uuid:uuid>/nics/", views.vm_nics_view, name="vm-nics"),
    path("vm/<uuid:uuid>/nics/add/", views.vm_nic_add_view, name="vm-nic-add"),
    path("vm/<uuid:uuid>/nics/remove/", views.vm_nic_remove_view, name="vm-nic-remove"),
    path("vm/<uuid:uuid>/nics/link-up/", views.vm_nic_link_view, {"state": "up"}, name="vm-nic-link-up"),
    path("vm/<uuid:uuid>/nics/link-down/", views.vm_nic_link_view, {"state": "down"}, name="vm-nic-link-down"),
]
