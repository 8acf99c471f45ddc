from django.urls import path

from . import api

urlpatterns = [
    path("quota/", api.QuotaApi.as_view(), name="quota"),
    path("tokens/", api.TokenListApi.as_view(), name="token-list"),
    path("tokens/<int:pk>/", api.TokenDetailApi.as_view(), name="token-detail"),
    path("ssh-keys/", api.SshKeyListApi.as_view(), name="ssh-key-list"),
    path("ssh-keys/<int:pk>/", api.SshKeyDetailApi.as_view(), name="ssh-key-detail"),
]
