from django.urls import path

from . import views

app_name = "provisioning"

urlpatterns = [
    path("", views.vm_create_view, name="create"),
]
