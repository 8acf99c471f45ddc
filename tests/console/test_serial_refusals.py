"""Refusals of the text console's websocket (through the live portal), without a guest."""
from __future__ import annotations

import uuid

import pytest
from websockets.exceptions import InvalidStatus

from kvmweb.console import services

from .conftest import session_cookie
from .wsclient import attempt

pytestmark = [pytest.mark.real]


def test_text_console_refusals(portal, owner, other_user, real_vm) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import memtest_spec

    url = portal.url.replace("http://", "ws://") + f"/ws/console/{uuid.uuid4()}/serial/"
    anonymous = attempt(url, origin=portal.url)
    assert anonymous.code == services.CLOSE_NOT_LOGGED_IN and "Not logged in" in anonymous.reason
    unknown = attempt(url, cookie=session_cookie(owner), origin=portal.url)
    assert unknown.code == services.CLOSE_VM_GONE and "No such virtual machine" in unknown.reason
    with pytest.raises(InvalidStatus) as refused:  # cross-site: refused at the handshake by the portal itself
        attempt(url, cookie=session_cookie(owner), origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # A real VM with a serial console, defined but shut off (no guest runs): refused with the reason; not visible
    # to another user at all.
    vm = real_vm(memtest_spec(serial_console=True))
    url = portal.url.replace("http://", "ws://") + f"/ws/console/{vm.uuid}/serial/"
    off = attempt(url, cookie=session_cookie(owner), origin=portal.url)
    assert off.code == services.CLOSE_NOT_RUNNING and "not running" in off.reason, off
    foreign = attempt(url, cookie=session_cookie(other_user), origin=portal.url)
    assert foreign.code == services.CLOSE_VM_GONE, foreign
