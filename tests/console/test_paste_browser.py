"""Issue 11, finding 3: "Paste as keys…" in the graphical console types a whole line into GRUB, Enter included.

A GRUB rescue guest (TCG) at its command line, its output copied to the serial port (set up with `virsh send-key`,
independent of the console under test). A line is pasted in Chromium's graphical console; what GRUB echoes and
prints is read back on the serial port, through the portal's text console (libvirt's console stream).

The finding was made on a busy host (two cores shared by several emulated guests). On an idle host even a burst
arrives intact, because QEMU itself feeds key events to the guest 10 ms apart; what loses keys is a guest whose CPU
stalls while keys keep coming, so that its PS/2 queue (16 bytes, 8 keys) overflows. The test makes those stalls
happen the same way every time: the cgroup CPU limit of the guest's vCPU (`virsh schedinfo`, 30 ms of CPU every
300 ms) stops it for ~270 ms at a time while QEMU's main loop, not limited, keeps feeding keys. Sent in one burst
(the old console), the alphabet line arrives as e.g. `echo abcdjklmnopqryz`, like the finding's `echo abcdemw`."""
from __future__ import annotations

import re
import time

import pytest

from tests.conftest import GRUB_ISO, memtest_spec, virsh
from tests.live import login, screenshot

from .grub import send_keys, wait_grub_menu

pytestmark = [pytest.mark.browser, pytest.mark.real]

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
DEFAULT_DELAY = 50  # ms, KEY_DELAY.default in static/console/console.js
# The test types slower than the default: on a loaded machine (the whole suite on two cores) the throttled guest's
# stalls grow beyond the ~270 ms the default is measured against. What it proves is the same: keys go one at a
# time, at the pace asked for (the old console sent them in one burst, whatever the pace).
TEST_DELAY = 100

def _serial(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.evaluate("() => window.kvmTerminal.received"))


def _wait_serial(page, pattern: str, since: int, timeout: float = 60) -> re.Match[str]:  # type: ignore[no-untyped-def]
    """Wait until the serial output after offset ``since`` matches ``pattern`` (GRUB's line editor may add
    terminal escapes: they are removed first)."""
    deadline = time.monotonic() + timeout
    while True:
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", _serial(page)[since:])
        found = re.search(pattern, text)
        if found:
            return found
        assert time.monotonic() < deadline, f"not on the serial port: {pattern!r}; got {text[-800:]!r}"
        time.sleep(0.3)


def _stall_vcpu(name: str, *, period_us: int, quota_us: int) -> None:
    """Limit the guest's vCPU to ``quota_us`` of CPU time every ``period_us`` (cgroup CPU bandwidth, live)."""
    virsh("schedinfo", name, "--live", f"vcpu_period={period_us}", f"vcpu_quota={quota_us}")
    info = virsh("schedinfo", name)
    assert f"vcpu_quota     : {quota_us}" in info, info


def _paste(vnc, text: str, delay: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Paste ``text`` as keys ``delay`` ms apart in the console page ``vnc``; wait until it is typed; what the
    console reports."""
    vnc.click("[data-action=paste]")
    vnc.fill(".console-paste textarea", text)
    vnc.fill(".console-paste input[name=delay]", str(delay))
    skipped = vnc.locator(".console-paste-skipped")
    shown = skipped.inner_text() if skipped.is_visible() else ""
    count = vnc.locator(".console-paste-count").inner_text()
    before = vnc.evaluate("() => window.kvmConsole.lastTyping ? window.kvmConsole.lastTyping.id : 0")
    vnc.click(".console-paste button[value=type]")
    vnc.wait_for_function(f"() => (window.kvmConsole.lastTyping || {{id: 0}}).id > {before}", timeout=60_000)
    job = vnc.evaluate("() => { const j = window.kvmConsole.lastTyping;"
                       " return {total: j.total, typed: j.typed, ms: j.ms, delay: j.delay, cancelled: j.cancelled}; }")
    job.update(skipped_shown=shown, count=count, bar=vnc.locator(".console-typing-text").inner_text())
    return dict(job)


def test_paste_as_keys_types_the_alphabet_line_into_grub(portal, console_proxy, page, real_vm, owner) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_start

    vm = real_vm(memtest_spec(iso=GRUB_ISO, serial_console=True, memory_kib=128 * 1024))
    vm_start(actor=owner, vm=vm)
    wait_grub_menu(vm)

    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/console/{vm.uuid}/text/")
    page.wait_for_selector(".kvm-terminal .console-state[data-state=connected]")
    # GRUB's command line, its output on the serial port as well as the screen; input stays on the keyboard.
    send_keys(vm.name, "c")
    time.sleep(1)
    send_keys(vm.name, "serial\nterminal_output --append serial\nterminal_output\n")
    page.wait_for_function("() => window.kvmTerminal.received.includes('grub> ')", timeout=60_000)

    # The busy host of the finding: the guest's vCPU stops for ~270 ms at a time (see the module's docstring).
    _stall_vcpu(vm.name, period_us=300_000, quota_us=30_000)

    vnc = page.context.new_page()
    try:
        vnc.goto(f"{portal.url}/console/{vm.uuid}/")
        vnc.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
        time.sleep(1)  # the serial output of the set-up has settled
        print("serial output of the set-up:", repr(_serial(page)))

        vnc.click("[data-action=paste]")
        assert vnc.input_value(".console-paste input[name=delay]") == str(DEFAULT_DELAY)
        vnc.click(".console-paste button[value=cancel]")
        since = len(_serial(page))
        job = _paste(vnc, f"echo {ALPHABET}\n", TEST_DELAY)
        print("alphabet line:", job)
        assert job["count"] == "32 keys to type." and job["skipped_shown"] == "", job
        assert (job["typed"], job["total"], job["delay"], job["cancelled"]) == (32, 32, TEST_DELAY, False), job
        # GRUB echoes the whole line as it is typed, Enter runs it, and echo prints the whole alphabet.
        _wait_serial(page, rf"\Aecho {ALPHABET}[\r\n]+{ALPHABET}[\r\n]+grub> ", since)
        screenshot(vnc, "console-grub-paste-alphabet")

        # Characters a US keyboard cannot type are listed before anything is sent, skipped, and named again after.
        since = len(_serial(page))
        job = _paste(vnc, "echo Skip€ped_Ä-keys:typed=OK/40@line,+.!\r\n", TEST_DELAY)
        print("line with untypable characters:", job)
        assert "€ (U+20AC)" in job["skipped_shown"] and "Ä (U+00C4)" in job["skipped_shown"], job
        assert job["total"] == 40 and job["typed"] == 40, job
        assert "Skipped (cannot be typed): € (U+20AC), Ä (U+00C4)" in job["bar"], job
        typed = re.escape("Skipped_-keys:typed=OK/40@line,+.!")
        _wait_serial(page, rf"\Aecho {typed}[\r\n]+{typed}[\r\n]+grub> ", since)
    finally:
        screenshot(vnc, "console-grub-paste")
        print("serial output:", repr(_serial(page)[-1200:]))
        vnc.close()
