from django.urls import path

from . import views

app_name = "media"

urlpatterns = [
    path("", views.iso_list_view, name="list"),
    path("register/", views.iso_register_view, name="register"),
    path("<int:pk>/delete/", views.iso_delete_view, name="delete"),
]
