from django.urls import path

from . import views

app_name = "machines"

urlpatterns = [
    path("", views.vm_list_view, name="list"),
    path("bulk/", views.vm_bulk_view, name="bulk"),
    path("<uuid:uuid>/", views.vm_detail_view, name="detail"),
    *[path(f"<uuid:uuid>/part/{part}/", views.vm_part_view, {"part": part}, name=f"part-{part}")
      for part in views.PARTS],
    path("<uuid:uuid>/delete/", views.vm_delete_view, name="delete"),
    path("<uuid:uuid>/shares/", views.vm_share_add_view, name="share-add"),
    path("<uuid:uuid>/shares/<int:pk>/", views.vm_share_change_view, name="share-change"),
    path("<uuid:uuid>/shares/<int:pk>/remove/", views.vm_share_remove_view, name="share-remove"),
    *[
        path(f"<uuid:uuid>/{action}/", views.vm_action_view, {"action": action}, name=action)
        for action in views.ACTION_NAMES
    ],
]
