from django.urls import path

from . import api

urlpatterns = [
    path("vms/<uuid:uuid>/console/token/", api.ConsoleTokenApi.as_view(), name="console-token"),
]
