from __future__ import annotations

from collections.abc import Mapping

from django import forms

from kvmweb.core.errors import ValidationError
from kvmweb.hypervisor import DomainState

class DeleteForm(forms.Form):
    delete_volumes = forms.BooleanField(
        required=False, initial=False, label="Also delete its disk volumes",
        help_text="Writable disks in storage pools are deleted; ISO media and read-only disks are kept.",
    )
    confirm = forms.BooleanField(required=True, label="Yes, delete this virtual machine")


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
    return {"name": get("name", "") or "", "state": state, "host_id": int(host) if host else None}
