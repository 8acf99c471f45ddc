"""The form that adds a host: it parses what staff typed; services decide whether it is allowed."""
from __future__ import annotations

from django import forms


class HostAddForm(forms.Form):
    name = forms.SlugField(max_length=64, help_text="A short name: letters, digits, - and _ (e.g. rack2-kvm1).")
    uri = forms.CharField(
        label="libvirt URI", max_length=255,
        help_text="qemu+ssh://root@host.example/system (port: host.example:2222), or qemu+tls://host.example/system.")
    host_key_fingerprint = forms.CharField(max_length=100, required=False, widget=forms.HiddenInput)
