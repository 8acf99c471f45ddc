from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.conf import settings

from kvmweb.access.permissions import SHARE_ROLES
from kvmweb.core.errors import ValidationError
from kvmweb.hypervisor import DomainState

from .selectors import SORTS

ROLE_CHOICES = [(r, r) for r in SHARE_ROLES]


class ShareForm(forms.Form):
    """Share a VM: one user or one group (by name), and a role. The service decides everything else."""

    user = forms.CharField(required=False, max_length=150, label="User", help_text="a user name, or…")
    group = forms.CharField(required=False, max_length=150, label="Group", help_text="…a group's name")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer", label="Role")


class ShareRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, label="Role")


class DeleteForm(forms.Form):
    delete_volumes = forms.BooleanField(
        required=False, initial=False, label="Also delete its disk volumes",
        help_text="Writable disks in storage pools are deleted; ISO media and read-only disks are kept.",
    )
    confirm = forms.BooleanField(required=True, label="Yes, delete this virtual machine")


class ShutdownForm(forms.Form):
    """"Shut down": the ACPI request; with ``force_after`` ticked, forced off after that many seconds (a job)."""

    force = forms.BooleanField(required=False, initial=False, label="Force off if it is still running after")
    force_after = forms.IntegerField(
        required=False, min_value=1, max_value=3600, label="seconds",
        initial=lambda: settings.KVMWEB_SHUTDOWN_TIMEOUT,
    )

    def force_after_value(self) -> int | str | None:
        """What ``shutdown.vm_shutdown_deadline`` takes: None for the plain request, '' for the default."""
        if not self.cleaned_data.get("force"):
            return None
        value = self.cleaned_data.get("force_after")
        return "" if value is None else int(value)


STATES = [s.slug for s in DomainState]


def parse_filters(params: Mapping[str, str]) -> dict[str, object]:
    """name/state/host query filters, validated (shared by the page and the API)."""
    get = params.get
    state = get("state", "") or ""
    if state and state not in STATES:
        raise ValidationError(f"Unknown state {state!r}; use one of {', '.join(STATES)}.",
                           fields={"state": [f"one of {', '.join(STATES)}"]})
    host = get("host", "") or ""
    if host and not str(host).isdigit():
        raise ValidationError("host must be a host id.", fields={"host": ["a host id"]})
    sort = get("sort", "") or "name"
    if sort not in SORTS:
        raise ValidationError(f"Unknown sort {sort!r}; use one of {', '.join(SORTS)}.",
                              fields={"sort": [f"one of {', '.join(SORTS)}"]})
    return {"name": get("name", "") or "", "state": state, "host_id": int(host) if host else None, "sort": sort}
