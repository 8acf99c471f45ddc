"""The graphical console for API clients, against a real guest: a client with an API token asks for a console URL
and opens it with a plain websocket client, without the portal's session cookie and without an Origin header; the
URL works once, for a short time, and only for its user's VMs."""
from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from kvmweb.console import services

from .conftest import api_client
from .rfbclient import RfbClient
from .wsclient import attempt, open_ws

pytestmark = [pytest.mark.real]


def _console_url(client: APIClient, vm) -> dict:  # type: ignore[no-untyped-def,type-arg]
    reply = client.post(f"/api/v1/vms/{vm.uuid}/console/token/", HTTP_HOST="127.0.0.1")
    assert reply.status_code == 200, reply.content
    return dict(reply.json())


def test_api_client_opens_the_console_without_cookie_or_origin(console_proxy, running_memtest, owner, other_user,
                                                               settings) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    settings.KVMWEB_CONSOLE_PORT = console_proxy.port  # the URL the API answers points at this run's proxy
    client = api_client(owner)
    body = _console_url(client, vm)
    assert body["view_only"] is False and body["expires"]
    url = body["url"]
    assert url.startswith(console_proxy.url(f"/vnc/{vm.uuid}?token="))

    with open_ws(url, cookie=None, origin=None) as ws:  # a plain client: no cookie, no Origin
        rfb = RfbClient(ws)
        screen = rfb.handshake()
        pixels = rfb.framebuffer(screen)
        assert len(pixels) == screen.width * screen.height * screen.bpp // 8 and any(pixels)

    again = attempt(url, cookie=None, origin=None)
    assert again.banner is None and again.code == services.CLOSE_TOKEN_USED, again

    # Valid for the TTL only (1 s here instead of 30, so the test need not wait half a minute).
    settings.KVMWEB_CONSOLE_TOKEN_TTL = 1
    late = _console_url(client, vm)["url"]
    time.sleep(1.5)
    expired = attempt(late, cookie=None, origin=None)
    assert expired.banner is None and expired.code == services.CLOSE_TOKEN_EXPIRED, expired

    # A browser's page elsewhere cannot use an API client's URL: a foreign Origin is refused as ever.
    settings.KVMWEB_CONSOLE_TOKEN_TTL = 30
    foreign = attempt(_console_url(client, vm)["url"], cookie=None, origin="http://evil.example")
    assert foreign.code == services.CLOSE_ORIGIN, foreign

    # Another user's API token: the VM does not exist for them.
    reply = api_client(other_user).post(f"/api/v1/vms/{vm.uuid}/console/token/", HTTP_HOST="127.0.0.1")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"

