"""``manage.py console_proxy``: the websockify-based console proxy (see kvmweb/console/proxy.py)."""
from __future__ import annotations

import resource
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from kvmweb.console.proxy import ConsoleProxyServer


class Command(BaseCommand):
    help = "Run the console proxy: noVNC websockets in, VM displays (through libvirt) out, one-time tokens."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default=settings.KVMWEB_CONSOLE_BIND)
        parser.add_argument("--port", type=int, default=settings.KVMWEB_CONSOLE_PORT)
        parser.add_argument("--watchdog-interval", type=float, default=1.0,
                            help="seconds between checks that live sessions may go on")

    def handle(self, *args: Any, **options: Any) -> None:
        # Two open files per session (the browser's socket and the display's): take all the system allows, not the
        # soft limit's 1024 of many systems.
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        server = ConsoleProxyServer(listen_host=options["bind"], listen_port=options["port"],
                                    watchdog_interval=options["watchdog_interval"])

        def stop(_sig: int, _frame: object) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"console proxy listening on ws://{options['bind']}:{options['port']}/vnc/<vm-uuid>?token=…",
                          ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.5)
        finally:
            server.server_close()
