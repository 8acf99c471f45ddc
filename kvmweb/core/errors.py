"""Service-level errors and the single mapping from any error we raise to (HTTP status, code, message)."""
from __future__ import annotations

from dataclasses import dataclass

from kvmweb import hypervisor as hv


class ServiceError(Exception):
    """An error a service raises on purpose; its ``detail`` is written for the person who asked."""

    status = 400
    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.fields = fields or {}


class NotFoundError(ServiceError):
    """Missing, or not yours: both look the same from outside (no leaking of other users' objects)."""

    status = 404
    code = "not_found"


class PermissionDeniedError(ServiceError):
    status = 403
    code = "permission_denied"


class ConflictError(ServiceError):
    status = 409
    code = "conflict"


class ValidationError(ServiceError):
    status = 400
    code = "invalid"


class FieldErrors:
    """Field errors collected while validating a request, raised together as one ValidationError.

    ``prefix`` is put before every field name (``"cloud_init."`` → ``cloud_init.user``). The message names the first
    problem and says "(and more)" when there is any other."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(f"{self.prefix}{name}", []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            name, messages = next(iter(self.fields.items()))
            more = " (and more)" if len(self.fields) > 1 or len(messages) > 1 else ""
            raise ValidationError(f"{name}: {messages[0]}{more}", fields=self.fields)


class PayloadTooLargeError(ServiceError):
    """A request body larger than we accept in one request (send it in pieces)."""

    status = 413
    code = "too_large"


class ServiceUnavailableError(ServiceError):
    """Something the portal needs for this action does not answer (the job queue): nothing was done; try later."""

    status = 503
    code = "unavailable"


@dataclass(frozen=True)
class ErrorReply:
    status: int
    code: str
    detail: str
    fields: dict[str, list[str]]


_HV_STATUS: list[tuple[type[hv.HypervisorError], int]] = [
    (hv.HostUnavailable, 503),
    (hv.NotFound, 404),
    (hv.InvalidRequest, 400),
    (hv.OperationInvalid, 409),
    (hv.AlreadyExists, 409),
    (hv.OperationFailed, 409),
]


def error_reply(exc: Exception) -> ErrorReply | None:
    """What to answer for ``exc``; None when it is not one of ours (a bug: let it surface)."""
    if isinstance(exc, ServiceError):
        return ErrorReply(exc.status, exc.code, exc.detail, exc.fields)
    if isinstance(exc, hv.HypervisorError):
        status = next((status for kind, status in _HV_STATUS if isinstance(exc, kind)), 409)
        return ErrorReply(status, exc.code, exc.detail, exc.fields)
    return None
