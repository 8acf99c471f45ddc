from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("profile/", views.profile_view, name="profile"),
    path("profile/tokens/", views.token_create_view, name="token-create"),
    path("profile/tokens/<int:pk>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("profile/ssh-keys/", views.ssh_key_add_view, name="ssh-key-add"),
    path("profile/ssh-keys/<int:pk>/delete/", views.ssh_key_delete_view, name="ssh-key-delete"),
    path("profile/two-factor/start/", views.totp_begin_view, name="totp-begin"),
    path("profile/two-factor/confirm/", views.totp_confirm_view, name="totp-confirm"),
    path("profile/two-factor/cancel/", views.totp_cancel_view, name="totp-cancel"),
    path("profile/two-factor/off/", views.totp_disable_view, name="totp-disable"),
    path("profile/two-factor/qr.svg", views.totp_qr_view, name="totp-qr"),
    path("password_change/", views.PasswordChangeView.as_view(), name="password-change"),
    path("password_change/done/", views.PasswordChangeDoneView.as_view(), name="password-change-done"),
    path("login/code/", views.login_code_view, name="login-code"),
]
