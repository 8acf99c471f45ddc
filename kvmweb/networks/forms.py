"""Forms for networks and NICs: they parse what a person typed; services decide whether it is allowed."""
from __future__ import annotations

import ipaddress
from typing import Any

from django import forms

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset

MODE_CHOICES = [
    ("isolated", "Isolated — guests and the host only"),
    ("nat", "NAT — guests reach outside through the host"),
    ("route", "Routed — guests' subnet routed by the host, no NAT"),
    ("bridge", "Bridge — guests join an existing host bridge"),
]


class NetworkForm(forms.Form):
    host = forms.ModelChoiceField(queryset=Host.objects.none(), empty_label=None)
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE)
    mode = forms.ChoiceField(choices=MODE_CHOICES, initial="isolated", widget=forms.RadioSelect)
    bridge = forms.CharField(
        max_length=64, required=False,
        help_text="Bridge mode: the existing host bridge (e.g. br0). Other modes: the bridge libvirt creates "
                  "(at most 15 characters; empty = libvirt picks virbrN).",
    )
    subnet = forms.CharField(max_length=43, required=False, help_text="IPv4 subnet, e.g. 192.168.100.0/24")
    gateway = forms.CharField(max_length=15, required=False,
                              help_text="The host's address on the network; empty = the subnet's first address.")
    dhcp_start = forms.CharField(max_length=15, required=False, label="DHCP range start")
    dhcp_end = forms.CharField(max_length=15, required=False, label="DHCP range end")
    hosts = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Static DHCP hosts",
        help_text="One per line: MAC IP [hostname], e.g. 52:54:00:12:34:56 192.168.100.10 web",
    )
    domain = forms.CharField(max_length=253, required=False, label="Domain name", help_text="e.g. lab.example")
    allow_users = forms.BooleanField(required=False, label="Users may attach their VMs to this network")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["host"].queryset = host_queryset()  # type: ignore[attr-defined]

    def clean_hosts(self) -> tuple[hv.DhcpHost, ...]:
        entries = []
        for number, line in enumerate(self.cleaned_data["hosts"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) not in (2, 3):
                raise forms.ValidationError(f"Line {number}: write MAC IP [hostname].")
            entries.append(hv.DhcpHost(mac=parts[0], ip=parts[1], name=parts[2] if len(parts) == 3 else ""))
        return tuple(entries)

    def spec(self) -> hv.NetworkSpec:
        """The typed spec of what was entered (validated later by the service, which knows the host)."""
        data = self.cleaned_data
        subnet = data["subnet"].strip() or None
        gateway = data["gateway"].strip() or None
        if subnet and not gateway and data["mode"] != "bridge":
            gateway = default_gateway(subnet)
        return hv.NetworkSpec(
            name=data["name"].strip(), mode=data["mode"], bridge=data["bridge"].strip() or None, subnet=subnet,
            gateway=gateway, dhcp_start=data["dhcp_start"].strip() or None,
            dhcp_end=data["dhcp_end"].strip() or None, hosts=data["hosts"],
            domain=data["domain"].strip() or None,
        )


def default_gateway(subnet: str) -> str | None:
    """The subnet's first address (what people expect as the gateway); None when the subnet is malformed."""
    try:
        return str(ipaddress.IPv4Network(subnet, strict=False).network_address + 1)
    except ValueError:
        return None


class NicForm(forms.Form):
    network = forms.ChoiceField(choices=())
    model = forms.ChoiceField(choices=[(m, m) for m in hv.NIC_MODELS], initial="virtio")
    mac = forms.CharField(max_length=17, required=False, label="MAC address",
                          help_text="Empty = generated (52:54:00:xx:xx:xx).")

    def __init__(self, *args: Any, networks: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network"].choices = [(n, n) for n in networks]  # type: ignore[attr-defined]


class NicTargetForm(forms.Form):
    mac = forms.CharField(max_length=17)
