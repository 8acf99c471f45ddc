from django.urls import path

from . import catalog_views as views

app_name = "templates"

urlpatterns = [
    path("", views.template_list_view, name="list"),
    path("new/", views.template_new_view, name="new"),
    path("<int:pk>/edit/", views.template_edit_view, name="edit"),
    path("<int:pk>/publish/", views.template_publish_view, {"public": True}, name="publish"),
    path("<int:pk>/unpublish/", views.template_publish_view, {"public": False}, name="unpublish"),
    path("<int:pk>/delete/", views.template_delete_view, name="delete"),
    path("from-vm/<uuid:uuid>/", views.template_from_vm_view, name="from-vm"),
    path("flavors/new/", views.flavor_new_view, name="flavor-new"),
    path("flavors/<int:pk>/edit/", views.flavor_edit_view, name="flavor-edit"),
    path("flavors/<int:pk>/delete/", views.flavor_delete_view, name="flavor-delete"),
]
