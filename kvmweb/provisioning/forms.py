"""The "New VM" wizard's form: parses what a person typed; the service (provisioning) checks it against the host."""
from __future__ import annotations

from typing import Any

from django import forms

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_queryset
from kvmweb.accounts.selectors import ssh_keys_of
from kvmweb.media.selectors import image_queryset, iso_list
from kvmweb.networks.selectors import attachable_networks
from kvmweb.storage.selectors import pool_list

from .osinfo import GENERIC, os_variants
from .selectors import flavor_list, template_queryset

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


def _host_pool_network(form: forms.Form, actor: Any, host: Host | None, *,
                       no_network: str) -> dict[str, list[tuple[str, str]]]:
    """Fill the host, storage pool and network selects both create forms share; the choices, for the rest."""
    hosts = [(str(h.pk), h.name + (" (in maintenance)" if h.maintenance else "")) for h in host_queryset()]
    form.fields["host"].choices = ([("any", "any host (placement chooses)")] if len(hosts) > 1 else []) + hosts
    if host is not None:
        form.fields["host"].initial = str(host.pk)
    choices = host_choices_for(host, actor)
    form.fields["disk_pool"].choices = choices["disk_pool"] or [("", "no storage pool is open to you")]
    form.fields["network"].choices = [("", no_network)] + choices["network"]
    return choices


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
        choices = _host_pool_network(self, actor, host, no_network="none")
        self.fields["iso"].choices = [("", "none")] + choices["iso"]
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


class CreateFromTemplateForm(forms.Form):
    """"From a template / image": the VM's disk starts from a library image (a linked clone or a copy), its sizes
    from a flavor (or typed), and cloud-init gives it a host name, a user and SSH keys."""

    source = forms.CharField(widget=forms.HiddenInput, initial="template")
    host = forms.ChoiceField(label="Host", widget=forms.Select(attrs={"data-reload-param": "host"}))
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE, widget=forms.TextInput(attrs={"autofocus": True}))
    template = forms.ChoiceField(label="Template", required=False)
    image = forms.ChoiceField(label="…or a disk image", required=False,
                              help_text="Instead of a template: any image of the library open to you.")
    flavor = forms.ChoiceField(label="Size (flavor)", required=False)
    vcpus = forms.IntegerField(label="vCPUs", required=False, min_value=1, max_value=4096,
                               help_text="Empty: the flavor's.")
    memory = forms.IntegerField(label="Memory (MiB)", required=False, min_value=1, help_text="Empty: the flavor's.")
    disk_size = forms.DecimalField(label="Disk (GiB)", required=False, min_value=0, max_digits=12, decimal_places=3,
                                   help_text="Empty: the flavor's (never below the image's size).")
    clone_mode = forms.ChoiceField(label="Disk", choices=[("", "as the template says"), ("linked", "linked clone "
                                   "(instant; reads the image)"), ("copy", "full copy (independent)")], required=False)
    disk_pool = forms.ChoiceField(label="Storage pool", required=False)
    network = forms.ChoiceField(label="Network", required=False)
    cloud_init = forms.BooleanField(label="Set up the guest with cloud-init", required=False, initial=True)
    hostname = forms.CharField(label="Host name", required=False, max_length=253, help_text="Empty: the VM's name.")
    user = forms.CharField(label="User name", required=False, max_length=32, help_text="Empty: your user name.")
    ssh_keys = forms.MultipleChoiceField(label="SSH keys (from your profile)", required=False,
                                         widget=forms.CheckboxSelectMultiple)
    password = forms.CharField(label="Password (optional)", required=False, max_length=256,
                               widget=forms.PasswordInput(render_value=False),
                               help_text="For the console; hashed before it leaves the portal. SSH keys are better.")
    user_data = forms.CharField(label="Extra user-data (#cloud-config)", required=False,
                                widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))
    start = forms.BooleanField(label="Start after creation", required=False, initial=True)
    autostart = forms.BooleanField(label="Start when the host boots (autostart)", required=False)

    def __init__(self, *args: Any, actor: Any, host: Host | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _host_pool_network(self, actor, host, no_network="the template's (or none)")
        templates = template_queryset(actor).filter(image__host=host) if host else template_queryset(actor).none()
        self.fields["template"].choices = [("", "none")] + [
            (str(t.pk), f"{t.name}{'' if t.public else ' (private)'}") for t in templates]
        images = image_queryset(actor).filter(host=host, complete=True) if host else image_queryset(actor).none()
        self.fields["image"].choices = [("", "none")] + [
            (str(i.pk), f"{i.name} ({human(i.virtual_size)})") for i in images]
        self.fields["flavor"].choices = [("", "the template's, or as typed below")] + [
            (str(f.pk), f"{f.name}: {f.vcpus} vCPU, {human(f.memory_mib * hv.MiB)}, {human(f.disk_bytes)}")
            for f in flavor_list()]
        self.fields["ssh_keys"].choices = [(str(k.pk), f"{k.name} ({k.key_type}, {k.fingerprint})")
                                           for k in ssh_keys_of(actor)]
        if not self.is_bound:
            self.fields["ssh_keys"].initial = [value for value, _ in self.fields["ssh_keys"].choices]

    def service_fields(self) -> dict[str, Any]:
        """The cleaned values as ``services.vm_create`` takes them."""
        data = self.cleaned_data
        size = data.get("disk_size")
        fields: dict[str, Any] = {
            "host": data["host"], "name": data["name"], "template": data.get("template") or None,
            "image": data.get("image") or None, "flavor": data.get("flavor") or None,
            "vcpus": data.get("vcpus"), "memory": f"{data['memory']}M" if data.get("memory") else None,
            "disk_size": f"{size.normalize():f}G" if size is not None else None,
            "clone_mode": data.get("clone_mode") or None, "disk_pool": data.get("disk_pool") or "",
            "network": data.get("network") or None, "start": data.get("start", False),
            "autostart": data.get("autostart", False),
        }
        if data.get("cloud_init"):
            fields["cloud_init"] = {
                "hostname": data.get("hostname") or None, "user": data.get("user") or None,
                "ssh_keys": [int(k) for k in data.get("ssh_keys") or []], "password": data.get("password") or None,
                "user_data": data.get("user_data") or "",
            }
        return fields
