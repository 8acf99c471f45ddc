"""Forms of the storage pages: they check shape; the services check meaning (names, sizes, space, rights)."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from kvmweb import hypervisor as hv

SIZE_HELP = hv.SIZE_HELP

FORMATS = [(f, f) for f in hv.VOLUME_FORMATS]
BUSES = [(b, b) for b in hv.DISK_BUSES]
BOOT = [("", "—"), ("hd", "disk (hd)"), ("cdrom", "CD-ROM"), ("network", "network (PXE)")]


class PoolDefineForm(forms.Form):
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE)
    path = forms.CharField(max_length=1024, label="Folder", help_text="absolute path; created when missing")
    autostart = forms.BooleanField(required=False, initial=True)


class PoolDeleteForm(forms.Form):
    delete_volumes = forms.BooleanField(required=False, label="Also delete every volume in it")


class PoolAccessForm(forms.Form):
    everyone = forms.BooleanField(required=False, label="Open to every user")
    users = forms.ModelMultipleChoiceField(queryset=get_user_model().objects.filter(is_active=True),
                                           required=False, label="Open to these users")


class VolumeCreateForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="e.g. data.qcow2 — " + hv.NAME_RULE)
    size = forms.CharField(max_length=32, help_text=SIZE_HELP)
    format = forms.ChoiceField(choices=FORMATS, initial="qcow2")


class ResizeForm(forms.Form):
    size = forms.CharField(max_length=32, help_text='"+10G" grows by 10 GiB; "30G" sets the new size. Grow only.')


class DiskAttachForm(forms.Form):
    pool = forms.CharField(max_length=64)
    volume = forms.CharField(max_length=64)
    new = forms.BooleanField(required=False)
    size = forms.CharField(max_length=32, required=False)
    format = forms.ChoiceField(choices=FORMATS, initial="qcow2")
    bus = forms.ChoiceField(choices=BUSES, initial="virtio")


class DiskTargetForm(forms.Form):
    target = forms.CharField(max_length=16)


class DiskResizeForm(DiskTargetForm, ResizeForm):
    pass


class DiskBusForm(DiskTargetForm):
    bus = forms.ChoiceField(choices=BUSES)


class CdromForm(DiskTargetForm):
    iso = forms.CharField(max_length=130, required=False, help_text="pool/volume; empty to eject")


class CdromAddForm(forms.Form):
    bus = forms.ChoiceField(choices=[("", "the machine's own (sata on q35, ide on pc)"),
                                     *[(b, b) for b in hv.CDROM_BUSES]], required=False)
    iso = forms.CharField(max_length=130, required=False, help_text="lib:<id> or pool/volume; empty for no medium")


class BootOrderForm(forms.Form):
    first = forms.ChoiceField(choices=BOOT[1:])
    second = forms.ChoiceField(choices=BOOT, required=False)
    third = forms.ChoiceField(choices=BOOT, required=False)

    def order(self) -> list[str]:
        data = self.cleaned_data
        return [d for d in (data["first"], data.get("second"), data.get("third")) if d]


class CloneForm(forms.Form):
    name = forms.CharField(max_length=64, help_text=hv.NAME_RULE)
    mode = forms.ChoiceField(
        choices=[("full", "Full copy — an independent VM; every writable disk is copied"),
                 ("linked", "Linked clone — a qcow2 overlay on the source's disks; instant, but the source's disks "
                            "must then stay, unchanged (keep the source shut off)")],
        initial="full", widget=forms.RadioSelect,
    )
    pause_source = forms.BooleanField(
        required=False, label="The source is running: pause it during the copy (full copy only)",
    )
