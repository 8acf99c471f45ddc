from django.urls import path

from . import api

urlpatterns = [
    path("quota/", api.QuotaApi.as_view(), name="quota"),
]
