"""The one way a page calls a service: success → its message; our error → the form's field errors or an error
message; anything else is a bug and surfaces."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from kvmweb import hypervisor as hv

from .errors import ServiceError, error_reply

T = TypeVar("T")


def run_service(request: HttpRequest, call: Callable[[], T], *, form: forms.Form | None = None,
                success: str | Callable[[T], str] | None = None) -> T | None:
    """Run ``call`` (one service call). On success show ``success`` (text, or made from the result; by default
    the result's own ``message``) and return the result. On a refusal of ours show its words — on ``form``'s fields
    when the error names fields the form has, else as an error message — and return None. Nothing else is caught."""
    try:
        result = call()
    except (ServiceError, hv.HypervisorError) as exc:
        reply = error_reply(exc)
        assert reply is not None
        if form is not None:
            placed = False
            for name, msgs in reply.fields.items():
                name = name if name in form.fields else name.rsplit(".", 1)[-1]  # "cloud_init.user" → "user"
                if name in form.fields:
                    for msg in msgs:
                        form.add_error(name, msg)
                    placed = True
            if not placed:
                form.add_error(None, reply.detail)
        else:
            messages.error(request, reply.detail)
        return None
    text = success(result) if callable(success) else success
    if text is None:
        text = getattr(result, "message", None)
    if text:
        messages.success(request, text)
    return result


def form_invalid_messages(request: HttpRequest, form: forms.Form) -> None:
    """A posted form that did not validate, said as error messages (for forms that live inside another page)."""
    for name, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"{name}: {error}" if name != forms.forms.NON_FIELD_ERRORS else error)


def submit(request: HttpRequest, form_class: type[forms.Form], run: Callable[[Any], T],
           success: str | Callable[[T], str] | None = None) -> T | None:
    """Validate the posted ``form_class``, then :func:`run_service` with it; messages either way."""
    form = form_class(request.POST)
    if not form.is_valid():
        form_invalid_messages(request, form)
        return None
    return run_service(request, lambda: run(form), success=success)
