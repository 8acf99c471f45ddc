from django.urls import path

from . import views

app_name = "media"

urlpatterns = [
    path("", views.iso_list_view, name="list"),
    path("register/", views.iso_register_view, name="register"),
    path("<int:pk>/delete/", views.iso_delete_view, name="delete"),
    path("images/", views.image_list_view, name="images"),
    path("images/register/", views.image_register_view, name="image-register"),
    path("images/<int:pk>/delete/", views.image_delete_view, name="image-delete"),
    path("images/<int:pk>/publish/", views.image_publish_view, name="image-publish"),
]
