"""The API's token authentication (DRF): ``Authorization: Token <secret>`` (as DRF's own scheme was, so existing
clients keep working) or ``Authorization: Bearer <secret>``. A token that does not let the request in is a 401 in
the API's JSON (``{"error": "token_expired", "detail": "This token expired on …"}``), with
``WWW-Authenticate: Token``. Tokens never pass through Django's ``authenticate()``, so the login lockout
(django-axes) does not count them."""
from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from .tokens import TokenRefused, token_authenticate

SCHEMES = (b"token", b"bearer")


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in SCHEMES:
            return None  # another scheme, or none: the session may still authenticate
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send the token as 'Authorization: Token <token>'.",
                                                  code="invalid_token")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token.", code="invalid_token") from None
        try:
            return token_authenticate(secret=secret)
        except TokenRefused as refused:
            raise exceptions.AuthenticationFailed(refused.detail, code=refused.code) from None

    def authenticate_header(self, request: Request) -> str:
        return "Token"


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """How the API schema (Swagger UI's "Authorize") describes the token."""

    target_class = "kvmweb.accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Token-based authentication: `Token <token>` (or `Bearer <token>`). Create tokens on "
                               "your profile page or with POST /api/v1/tokens/."}
