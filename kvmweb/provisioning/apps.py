from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "kvmweb.provisioning"
    label = "provisioning"
    verbose_name = "New VMs"
