"""Forms of the templates page: they check shape; ``catalog.py`` checks meaning (names, sizes, images, rights)."""
from __future__ import annotations

from typing import Any

from django import forms

from kvmweb import hypervisor as hv
from kvmweb.media.models import IsoImage

from .catalog import size_text
from .models import Flavor, Template
from .osinfo import os_variants


class FlavorForm(forms.Form):
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE)
    vcpus = forms.IntegerField(label="vCPUs", min_value=1, max_value=4096, initial=1)
    memory = forms.CharField(max_length=32, initial="1G", help_text='e.g. "512M", "2G" (a bare number: MiB)')
    disk = forms.CharField(max_length=32, initial="10G", help_text='e.g. "20G" (a bare number: GiB)')
    description = forms.CharField(max_length=200, required=False)

    @classmethod
    def of(cls, flavor: Flavor) -> FlavorForm:
        return cls(initial={"name": flavor.name, "vcpus": flavor.vcpus, "memory": size_text(flavor.memory_mib * hv.MiB),
                            "disk": size_text(flavor.disk_bytes), "description": flavor.description})


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE)
    image = forms.ChoiceField(label="Disk image", help_text="A complete disk image of the image library")
    flavor = forms.ChoiceField(required=False)
    os_variant = forms.CharField(label="OS variant", max_length=64, required=False,
                                 help_text="osinfo short id (e.g. debian12); empty: the image's",
                                 widget=forms.TextInput(attrs={"list": "os-variants"}))
    network = forms.CharField(max_length=64, required=False, help_text="The network a new VM joins by default")
    clone_mode = forms.ChoiceField(label="Disk of a new VM", choices=Template.CloneMode.choices,
                                   initial=Template.CloneMode.LINKED)
    cloud_init = forms.BooleanField(label="Give new VMs a cloud-init seed", required=False, initial=True)
    public = forms.BooleanField(label="Published: offered to every user", required=False)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, template: Template | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        if template is not None:  # a template keeps its image; publishing has its own buttons
            del self.fields["image"], self.fields["public"]
        else:
            images = IsoImage.objects.filter(kind=IsoImage.Kind.IMAGE, complete=True).select_related("host")
            self.fields["image"].choices = [(str(i.pk), f"{i.name} on {i.host.name} ({hv.human(i.virtual_size)})")
                                            for i in images]
        self.fields["flavor"].choices = [("", "none")] + [
            (str(f.pk), f"{f.name}: {f.vcpus} vCPU, {hv.human(f.memory_mib * hv.MiB)}, {hv.human(f.disk_bytes)}")
            for f in Flavor.objects.all()]
        self.variants = os_variants()

    @classmethod
    def of(cls, template: Template, *args: Any) -> TemplateForm:
        return cls(*args, template=template, initial={
            "name": template.name, "flavor": str(template.flavor_id or ""), "os_variant": template.os_variant,
            "network": template.network, "clone_mode": template.clone_mode, "cloud_init": template.cloud_init,
            "description": template.description})

    def service_fields(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["os_variant_id"] = data.pop("os_variant")
        data["flavor"] = data.get("flavor") or None
        return data


class FromVmForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="The template's name; its image is <name>.qcow2. " + hv.NAME_RULE)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
