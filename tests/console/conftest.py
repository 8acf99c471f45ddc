"""Console fixtures: the console proxy as a subprocess on the test database, a raw websocket client, a running
memtest86+ guest (TCG, VNC listen='none')."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import ARTIFACTS, ROOT, free_port, server_env, stopped_at_end, wait_port

PORTAL_ORIGIN = "http://127.0.0.1:8000"  # an allowed host (127.0.0.1); the port does not matter for the check
# This run's proxy port, set before any server starts: the portal (tests/live.py, which copies os.environ) then
# hands pages this port, and the proxy fixture listens on it.
CONSOLE_PORT = free_port()
os.environ["KVMWEB_CONSOLE_PORT"] = str(CONSOLE_PORT)


@dataclass
class Proxy:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@pytest.fixture(scope="session")
def console_proxy_server(django_db_setup, django_db_blocker) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    """``manage.py console_proxy`` on a free loopback port, watchdog every 0.5 s, on the test database."""
    port = CONSOLE_PORT
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"console-proxy-{port}.log"
    env = server_env()
    env["KVMWEB_LOG_LEVEL"] = "INFO"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "console_proxy", "--bind", "127.0.0.1", "--port", str(port),
             "--watchdog-interval", "0.5"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    with stopped_at_end(proc):
        wait_port(port, proc)
        yield Proxy(port=port, proc=proc, log=log)


@pytest.fixture
def console_proxy(console_proxy_server: Proxy, transactional_db) -> Proxy:  # type: ignore[no-untyped-def]
    assert console_proxy_server.proc.poll() is None, f"the console proxy died: see {console_proxy_server.log}"
    return console_proxy_server


def session_cookie(user) -> str:  # type: ignore[no-untyped-def]
    """A logged-in portal session for ``user``, as the Cookie header a browser would send to the proxy."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def api_client(user):  # type: ignore[no-untyped-def]
    """A DRF test client authenticated as API clients are: ``Authorization: Token …`` with a new API token of
    ``user`` (no session)."""
    from rest_framework.test import APIClient

    from kvmweb.accounts.tokens import token_create

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(actor=user, name='console client').secret}")
    return client


@pytest.fixture
def running_memtest(real_vm, owner):  # type: ignore[no-untyped-def]
    """A memtest86+ guest under TCG with VNC listen='none', running; destroyed and undefined after the test."""
    from kvmweb.machines.services import vm_start
    from tests.conftest import memtest_spec

    vm = real_vm(memtest_spec())
    vm_start(actor=owner, vm=vm)
    return vm

