from django import forms


class DeleteForm(forms.Form):
    delete_volumes = forms.BooleanField(
        required=False, initial=False, label="Also delete its disk volumes",
        help_text="Writable disks in storage pools are deleted; ISO media and read-only disks are kept.",
    )
    confirm = forms.BooleanField(required=True, label="Yes, delete this virtual machine")
