"""The person's own account: the profile (password, API tokens, SSH keys, two-factor login), the login with its
second step, and the lockout page. Thin: reads from selectors, changes through services."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login

from kvmweb.audit.services import audited
from kvmweb.core.errors import NotFoundError, PermissionDeniedError
from kvmweb.core.views import run_service

from . import sshkeys, tokens, twofactor
from .forms import CodeForm, SshKeyForm, TokenForm
from .lockout import lockout_until
from .selectors import ssh_keys_of, tokens_of, totp_device_of

NEW_TOKEN = "kvmweb_new_token"  # session: the secret of the token just made, shown on the next profile page only
PENDING = "kvmweb_login_pending"  # session: who gave the right password and still owes the second factor
PENDING_SECONDS = 300


# ------------------------------------------------------------------------------------------------ the profile
def _profile(request: HttpRequest, **forms: Form) -> HttpResponse:
    user = request.user
    setup = totp_device_of(user, confirmed=False)
    return render(request, "accounts/profile.html", {
        "tokens": tokens_of(user), "keys": ssh_keys_of(user), "now": timezone.now(),
        "new_token": request.session.pop(NEW_TOKEN, None),
        "totp_on": totp_device_of(user) is not None, "totp_setup": setup,
        "totp_secret": twofactor.totp_secret_text(setup) if setup else "",
        "token_form": forms.get("token_form") or TokenForm(),
        "key_form": forms.get("key_form") or SshKeyForm(),
        "totp_on_form": forms.get("totp_on_form") or CodeForm(prefix="totp-on"),
        "totp_off_form": forms.get("totp_off_form") or CodeForm(prefix="totp-off"),
    })


def _to_profile(anchor: str) -> HttpResponse:
    return redirect(reverse("accounts:profile") + anchor)


def _posted(request: HttpRequest, form: Form, key: str, anchor: str, call: Callable[[dict[str, Any]], Any],
            then: Callable[[Any], None] | None = None) -> HttpResponse:
    """A profile form was sent: the service's words on success (back to the profile's section), else the profile
    again with the form's errors on its fields."""
    if form.is_valid():
        result = run_service(request, lambda: call(form.cleaned_data), form=form)
        if result is not None:
            if then is not None:
                then(result)
            return _to_profile(anchor)
    return _profile(request, **{key: form})


@login_required
@require_GET
@never_cache
def profile_view(request: HttpRequest) -> HttpResponse:
    return _profile(request)


@login_required
@require_POST
def token_create_view(request: HttpRequest) -> HttpResponse:
    def keep_secret(result: tokens.TokenCreated) -> None:
        request.session[NEW_TOKEN] = {"name": result.token.name, "secret": result.secret}

    return _posted(request, TokenForm(request.POST, prefix="token"), "token_form", "#tokens",
                   lambda d: tokens.token_create(actor=request.user, name=d["name"], expires=d["expires"]),
                   then=keep_secret)


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    # not through run_service: someone else's token (or a revoked one) is a 404, as everywhere
    messages.success(request, tokens.token_revoke(actor=request.user, token_id=pk).message)
    return _to_profile("#tokens")


@login_required
@require_POST
def ssh_key_add_view(request: HttpRequest) -> HttpResponse:
    data = request.POST.copy()
    form = SshKeyForm(data, prefix="key")
    if sshkeys.looks_private(data.get("key-public_key", "")):
        form.is_valid()  # the service refuses it in words; the form then shows an empty field, not the key
        data["key-public_key"] = ""
    return _posted(request, form, "key_form", "#ssh-keys",
                   lambda d: sshkeys.ssh_key_add(actor=request.user, public_key=d["public_key"], name=d["name"]))


@login_required
@require_POST
def ssh_key_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    messages.success(request, sshkeys.ssh_key_delete(actor=request.user, key_id=pk).message)  # others' keys: 404
    return _to_profile("#ssh-keys")


@login_required
@require_POST
def totp_begin_view(request: HttpRequest) -> HttpResponse:
    run_service(request, lambda: twofactor.totp_begin(actor=request.user))
    return _to_profile("#two-factor")


@login_required
@require_POST
def totp_confirm_view(request: HttpRequest) -> HttpResponse:
    return _posted(request, CodeForm(request.POST, prefix="totp-on"), "totp_on_form", "#two-factor",
                   lambda d: twofactor.totp_confirm(actor=request.user, code=d["code"]))


@login_required
@require_POST
def totp_cancel_view(request: HttpRequest) -> HttpResponse:
    run_service(request, lambda: twofactor.totp_cancel(actor=request.user))
    return _to_profile("#two-factor")


@login_required
@require_POST
def totp_disable_view(request: HttpRequest) -> HttpResponse:
    return _posted(request, CodeForm(request.POST, prefix="totp-off"), "totp_off_form", "#two-factor",
                   lambda d: twofactor.totp_disable(actor=request.user, code=d["code"]))


@login_required
@require_GET
@never_cache
def totp_qr_view(request: HttpRequest) -> HttpResponse:
    """The QR code of the secret being set up (an SVG image); nothing once it is confirmed."""
    setup = totp_device_of(request.user, confirmed=False)
    if setup is None:
        raise NotFoundError("No two-factor setup is in progress.")
    return HttpResponse(twofactor.totp_qr_svg(setup), content_type="image/svg+xml")


# ------------------------------------------------------------------------------------------------ password
class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's own view and form, in the portal's page; the change is audited."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password-change-done")

    def form_valid(self, form: Any) -> HttpResponse:
        user = self.request.user
        with audited(actor=user, action="account.password_change", target_type="user", target=user.get_username()):
            return super().form_valid(form)


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


# ------------------------------------------------------------------------------------------------ login
class LoginView(auth_views.LoginView):
    """Django's login; for a person with two-factor login on, a right password leads to the code page
    (:func:`login_code_view`) instead of logging in. Failed passwords count towards the lockout (django-axes)."""

    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if totp_device_of(user) is None:
            return super().form_valid(form)
        self.request.session[PENDING] = {"user": user.pk, "backend": user.backend, "at": time.time(),
                                         "next": self.get_success_url()}
        return redirect("accounts:login-code")


def _pending_user(request: HttpRequest) -> tuple[Any, dict[str, Any]] | None:
    pending = request.session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        return None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()
    return (user, pending) if user is not None else None


@require_http_methods(["GET", "POST"])
@never_cache
def login_code_view(request: HttpRequest) -> HttpResponse:
    """The login's second step: the code from the authenticator app, within 5 minutes of the password."""
    found = _pending_user(request)
    if found is None:
        request.session.pop(PENDING, None)
        if request.method == "POST":
            messages.error(request, "That took too long: log in again.")
        return redirect("login")
    user, pending = found
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = run_service(request, lambda: twofactor.totp_verify_login(user=user, code=form.cleaned_data["code"]),
                             form=form, success="")
        if device is not None:
            del request.session[PENDING]
            auth_login(request, user, backend=pending.get("backend") or request.session.get(BACKEND_SESSION_KEY))
            otp_login(request, device)
            return redirect(pending.get("next") or "/")
    return render(request, "registration/login_code.html", {"form": form, "username": user.get_username()})


@require_http_methods(["GET", "POST"])
def admin_login_view(request: HttpRequest) -> HttpResponse:
    """Django's admin sends people who may not see it here: one login for everyone (so the lockout and the second
    factor apply to staff too); someone logged in who is not staff is told so instead of being sent round."""
    if request.user.is_authenticated:
        raise PermissionDeniedError(f"Only staff may open the admin; you are logged in as "
                                    f"{request.user.get_username()}.")
    query = request.META.get("QUERY_STRING", "")
    return redirect(reverse("login") + (f"?{query}" if query else ""))


def locked_out(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """django-axes' answer to a locked-out login (settings ``AXES_LOCKOUT_CALLABLE``): a page saying when to try
    again (429)."""
    credentials = getattr(request, "axes_credentials", None) or {}
    username = str(credentials.get("username") or request.POST.get("username", ""))
    until = lockout_until(username=username, ip_address=getattr(request, "axes_ip_address", None))
    minutes = max(1, -(-int((until - timezone.now()).total_seconds()) // 60)) if until else None
    return render(request, "registration/locked_out.html", {
        "username": username, "until": until, "minutes": minutes,
    }, status=429)
