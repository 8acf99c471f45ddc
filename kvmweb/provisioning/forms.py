"""The "New VM" wizard's form: parses what a person typed; the service (provisioning) checks it against the host."""
from __future__ import annotations

from typing import Any

from django import forms

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.media.selectors import iso_list
from kvmweb.networks.selectors import attachable_networks
from kvmweb.storage.selectors import pool_list

from .osinfo import GENERIC, os_variants

human = hv.human


def host_choices_for(host: Host | None, actor: Any) -> dict[str, list[tuple[str, str]]]:
    """The ISO library, storage pools and networks of ``host`` as select choices (one listing each)."""
    result: dict[str, list[tuple[str, str]]] = {"iso": [], "disk_pool": [], "network": []}
    if host is None:
        return result
    result["iso"] = [(str(i.pk), f"{i.name} ({human(i.size)})") for i in iso_list(actor=actor, host=host, complete_only=True)]
    try:
        result["disk_pool"] = [(p.name, f"{p.name} ({human(p.info.available)} free)")
                               for p in pool_list(actor=actor, host=host) if p.info.active and p.info.type == "dir"]
        result["network"] = [(n.name, f"{n.name}{'' if n.active else ' (inactive)'}")
                             for n in attachable_networks(actor=actor, host=host)]
    except hv.HypervisorError:
        pass
    return result


class CreateVmForm(forms.Form):
    # choosing a host reloads the form with that host's pools, networks and media (static/js/autosubmit.js)
    host = forms.ChoiceField(label="Host", widget=forms.Select(attrs={"data-reload-param": "host"}))
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE, widget=forms.TextInput(attrs={"autofocus": True}))
    os_variant = forms.CharField(
        label="OS variant", initial=GENERIC, max_length=64, required=False,
        help_text="From osinfo-db, e.g. debian12, win10; 'generic' when unknown. It picks virtio or SATA/e1000 "
                  "and the default memory.", widget=forms.TextInput(attrs={"list": "os-variants"}))
    vcpus = forms.IntegerField(label="vCPUs", initial=1, min_value=1, max_value=4096)
    memory = forms.IntegerField(label="Memory", required=False, min_value=1,
                                help_text="Empty: the OS variant's recommendation.")
    memory_unit = forms.ChoiceField(label="Unit", choices=[("M", "MiB"), ("G", "GiB")], initial="M")
    iso = forms.ChoiceField(label="Install medium (CD-ROM)", required=False)
    disk = forms.ChoiceField(label="Disk", choices=[("new", "a new disk"), ("none", "no disk")], initial="new",
                             widget=forms.RadioSelect)
    disk_size = forms.DecimalField(label="Disk size (GiB)", required=False, initial=10, min_value=0,
                                   max_digits=12, decimal_places=3)
    disk_format = forms.ChoiceField(label="Format", choices=[("qcow2", "qcow2"), ("raw", "raw")], initial="qcow2")
    disk_pool = forms.ChoiceField(label="Storage pool", required=False)
    network = forms.ChoiceField(label="Network", required=False)
    start = forms.BooleanField(label="Start after creation", required=False, initial=True)
    autostart = forms.BooleanField(label="Start when the host boots (autostart)", required=False)

    def __init__(self, *args: Any, actor: Any, host: Host | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["host"].choices = [(str(h.pk), h.name) for h in host_queryset()]
        if host is not None:
            self.fields["host"].initial = str(host.pk)
        choices = host_choices_for(host, actor)
        self.fields["iso"].choices = [("", "none")] + choices["iso"]
        self.fields["disk_pool"].choices = choices["disk_pool"] or [("", "no storage pool is open to you")]
        self.fields["network"].choices = [("", "none")] + choices["network"]
        self.variants = os_variants()

    def service_fields(self) -> dict[str, Any]:
        """The cleaned values as ``services.vm_create`` takes them."""
        data = self.cleaned_data
        memory = f"{data['memory']}{data['memory_unit']}" if data.get("memory") else None
        new_disk = data.get("disk") == "new"
        size = data.get("disk_size")
        return {
            "host": data["host"], "name": data["name"], "vcpus": data["vcpus"], "memory": memory,
            "iso": data.get("iso") or None,
            "disk_size": (f"{size.normalize():f}G" if size is not None else "") if new_disk else None,
            "disk_format": data["disk_format"], "disk_pool": data.get("disk_pool") or "",
            "os_variant_id": data.get("os_variant") or GENERIC, "network": data.get("network") or None,
            "start": data.get("start", False), "autostart": data.get("autostart", False),
        }
