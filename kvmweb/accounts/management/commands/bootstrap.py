"""First-run setup for the embedded default: the admin account and the libvirt hosts from the settings."""
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from kvmweb.accounts.services import admin_ensure, host_setup
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_probe, host_register
from kvmweb.hypervisor import HypervisorError


class Command(BaseCommand):
    help = ("Create the first admin (KVMWEB_ADMIN_USER/KVMWEB_ADMIN_PASSWORD), register the hosts in "
            "KVMWEB_LIBVIRT_URIS and set each up (its default storage pool, opened to users).")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        username = os.environ.get("KVMWEB_ADMIN_USER", "admin")
        user, created, generated = admin_ensure(username=username, password=os.environ.get("KVMWEB_ADMIN_PASSWORD"))
        if generated:
            pw_file = settings.VAR_DIR / "admin_password"
            pw_file.write_text(generated + "\n")
            pw_file.chmod(0o600)
            self.stdout.write(self.style.SUCCESS(
                f"Created admin account '{username}' with password: {generated}\n"
                f"(also saved in {pw_file}; change it in the admin)"
            ))
        elif created:
            self.stdout.write(self.style.SUCCESS(
                f"Created admin account '{username}' with the password from KVMWEB_ADMIN_PASSWORD."))
        else:
            self.stdout.write(f"Admin account '{username}' exists (password unchanged unless KVMWEB_ADMIN_PASSWORD "
                              "says otherwise).")
        for uri in settings.KVMWEB_LIBVIRT_URIS:
            host = host_register(actor=user, uri=uri)
            try:
                facts = host_probe(host=host)
                self.stdout.write(f"Host {host.name} ({uri}): {facts.hostname}, guests run as "
                                  f"'{host.effective_domain_type}'")
            except HypervisorError as exc:
                self.stdout.write(self.style.WARNING(f"Host {host.name} ({uri}) does not answer: {exc.detail}"))
                continue
            for outcome in host_setup(actor=user, host=host):
                self.stdout.write(f"  {outcome.message}" if outcome.ok else
                                  self.style.WARNING(f"  {outcome.step} failed: {outcome.message}"))
        self.stdout.write(f"{Host.objects.count()} host(s) registered.")
