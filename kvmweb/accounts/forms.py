"""The profile's forms: they only parse; the services check and decide."""
from __future__ import annotations

from django import forms

from .sshkeys import NAME_MAX as KEY_NAME_MAX
from .tokens import NAME_MAX as TOKEN_NAME_MAX


class TokenForm(forms.Form):
    prefix = "token"

    name = forms.CharField(label="Name", max_length=TOKEN_NAME_MAX,
                           help_text="What or where it is used, e.g. “backup script on build01”.")
    expires = forms.DateField(label="Expires (optional)", required=False,
                              widget=forms.DateInput(attrs={"type": "date"}),
                              help_text="The token stops working at the end of this day. Empty: when you revoke it.")


class SshKeyForm(forms.Form):
    prefix = "key"

    public_key = forms.CharField(
        label="Public key", max_length=16 * 1024, strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One line of your .pub file, e.g. ~/.ssh/id_ed25519.pub: ssh-ed25519, ecdsa-sha2-nistp256/384/521, "
                  "or ssh-rsa of 2048 bits or more.")
    name = forms.CharField(label="Name (optional)", max_length=KEY_NAME_MAX, required=False,
                           help_text="Empty: the key's comment.")


class CodeForm(forms.Form):
    """A 6-digit code from the authenticator app."""

    code = forms.CharField(label="Code from your app", max_length=12, widget=forms.TextInput(attrs={
        "inputmode": "numeric", "autocomplete": "one-time-code", "size": 8}))
