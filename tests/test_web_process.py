"""The web process (``python -m kvmweb.web``): daphne with the portal, without the optional modules it never uses."""
from __future__ import annotations

import subprocess
import sys

from kvmweb import web

LOAD_EVERYTHING = """
import sys
import kvmweb.web as web
web.prepare()
import daphne.server
import django
django.setup()
import kvmweb.asgi
from django.urls import get_resolver
get_resolver().url_patterns
print(",".join(sorted(m for m in web.NOT_LOADED if sys.modules.get(m) is not None)))
"""


def test_the_web_process_loads_the_portal_without_the_optional_modules() -> None:
    proc = subprocess.run([sys.executable, "-c", LOAD_EVERYTHING], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""  # nothing of NOT_LOADED came in, and every URL's view imported fine


def test_daphne_gets_the_portal_application_unless_told_otherwise(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[list[str]] = []
    monkeypatch.setattr(web, "prepare", lambda: None)  # prepare() is for a fresh process, not this one
    monkeypatch.setattr("daphne.cli.CommandLineInterface.run", lambda self, args: seen.append(args))
    web.main(["-b", "::1", "-p", "8001"])
    web.main(["-p", "8001", "other.asgi:app"])
    assert seen == [["-b", "::1", "-p", "8001", web.APPLICATION], ["-p", "8001", "other.asgi:app"]]
