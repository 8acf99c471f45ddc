"""``manage.py ssh_key``: make the portal's SSH key pair when it does not exist yet, and print the line to put into
a host's authorized_keys (scripts/setup.sh runs it)."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from kvmweb.hosts.identity import ssh_identity


class Command(BaseCommand):
    help = "Make the portal's SSH key (KVMWEB_SSH_DIR) if missing; print the line for a host's authorized_keys."

    def handle(self, *args: Any, **options: Any) -> None:
        me = ssh_identity()
        self.stdout.write(me.authorized_keys_line)
