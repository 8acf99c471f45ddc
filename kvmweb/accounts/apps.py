from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "kvmweb.accounts"
    label = "accounts"
