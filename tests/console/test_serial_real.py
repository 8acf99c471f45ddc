"""The text console: a GRUB rescue guest (TCG) with a serial port. GRUB is switched to the serial terminal by
keys sent with `virsh send-key` (its graphical screen), then text typed in the browser's xterm.js terminal
reaches GRUB through the portal's websocket and libvirt's console stream, and GRUB's answer appears there."""
from __future__ import annotations

import time

import pytest

from kvmweb.console import services
from tests.conftest import GRUB_ISO, memtest_spec
from tests.live import login, screenshot

from .conftest import session_cookie
from .grub import send_keys, wait_grub_menu
from .wsclient import attempt

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_text_console_round_trip(portal, console_proxy, page, real_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_start

    vm = real_vm(memtest_spec(iso=GRUB_ISO, serial_console=True, memory_kib=128 * 1024))
    vm_start(actor=owner, vm=vm)
    wait_grub_menu(vm)

    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/console/{vm.uuid}/text/")
    page.wait_for_selector(".kvm-terminal .console-state[data-state=connected]")

    # One browser session per stream: a second opener (same user, raw client) is refused with a reason.
    ws_url = portal.url.replace("http://", "ws://") + f"/ws/console/{vm.uuid}/serial/"
    second = attempt(ws_url, cookie=session_cookie(owner), origin=portal.url)
    assert second.code == services.CLOSE_HOST and "already open" in second.reason, second
    # Another user's session gets nothing of this VM's console.
    foreign = attempt(ws_url, cookie=session_cookie(other_user), origin=portal.url)
    assert foreign.code == services.CLOSE_VM_GONE and foreign.banner is None, foreign

    send_keys(vm.name, "c")
    time.sleep(1)
    send_keys(vm.name, "serial\nterminal_input serial console\nterminal_output serial console\n")
    page.wait_for_function("() => window.kvmTerminal.received.includes('grub> ')", timeout=30_000)

    page.locator(".terminal-screen").click()
    page.keyboard.type("echo kvmweb-serial-ok", delay=60)
    page.keyboard.press("Enter")
    try:
        page.wait_for_function("() => /\\n\\r?kvmweb-serial-ok\\r?\\n/.test(window.kvmTerminal.received)",
                               timeout=30_000)
    finally:
        screenshot(page, "console-serial-grub")
        print("serial output:", repr(page.evaluate("() => window.kvmTerminal.received")[-600:]))

    # "Paste as keys" in the graphical console types into the same GRUB: its answer shows up on the serial port.
    vnc = page.context.new_page()
    try:
        vnc.goto(f"{portal.url}/console/{vm.uuid}/")
        vnc.wait_for_selector(".console-state[data-state=connected]")
        vnc.click("[data-action=paste]")
        vnc.fill(".console-paste textarea", "echo Pasted-OK_42\n")
        vnc.click(".console-paste button[value=type]")
        page.wait_for_function("() => window.kvmTerminal.received.includes('\\rPasted-OK_42')", timeout=30_000)
    finally:
        screenshot(vnc, "console-grub-paste")
        print("serial output:", repr(page.evaluate("() => window.kvmTerminal.received")[-300:]))
        vnc.close()
