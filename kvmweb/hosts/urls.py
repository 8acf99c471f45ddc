from django.urls import path

from . import views

app_name = "hosts"

urlpatterns = [
    path("", views.host_list_view, name="list"),
    path("add/", views.host_add_view, name="add"),
    path("<int:pk>/", views.host_detail_view, name="detail"),
    path("<int:pk>/remove/", views.host_remove_view, name="remove"),
]
