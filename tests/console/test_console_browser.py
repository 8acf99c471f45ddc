"""A person opens the console of a memtest86+ guest (TCG, VNC listen='none') in Chromium: the canvas shows the
guest's screen as libvirt sees it, and F1 pressed in the console changes the guest's screen."""
from __future__ import annotations

import time

import numpy as np
import pytest

from kvmweb.machines.handles import vm_handle
from tests.live import ARTIFACTS, login, screenshot

from .images import decode_png, difference, histogram, is_flat

pytestmark = [pytest.mark.browser, pytest.mark.real]


def _canvas(page) -> np.ndarray:  # type: ignore[no-untyped-def]
    return decode_png(page.locator(".console-screen canvas").screenshot())


def _libvirt_screen(vm) -> np.ndarray:  # type: ignore[no-untyped-def]
    return decode_png(vm_handle(vm).screenshot_png())


def _poll(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is not None:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} (last: {last!r})")


def test_console_shows_memtest_and_f1_changes_it(portal, console_proxy, page, running_memtest) -> None:  # type: ignore[no-untyped-def]
    vm = running_memtest
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    assert page.locator("#console-thumbnail").is_visible()
    page.click("#console-open-inline")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)

    # memtest draws its screen within seconds under TCG: wait until the canvas is not flat any more.
    canvas = _poll(lambda: (lambda img: None if is_flat(img) else img)(_canvas(page)), 60,
                   "the console canvas stays flat")
    ours = _libvirt_screen(vm)
    canvas = _canvas(page)
    screenshot(page, "console-memtest")
    (ARTIFACTS / "console-memtest-libvirt.png").write_bytes(vm_handle(vm).screenshot_png())
    assert not is_flat(ours)
    diff = difference(canvas, ours)
    hist_distance = float(np.abs(histogram(canvas) - histogram(ours)).sum())
    assert diff < 25, f"the canvas does not look like libvirt's screenshot (mean block difference {diff:.1f})"
    assert hist_distance < 0.5, f"colour histograms differ too much ({hist_distance:.2f})"

    # F1 typed into the console reaches the guest: memtest opens its configuration screen.
    before_guest = ours
    page.locator(".console-screen canvas").click()
    page.keyboard.press("F1")
    changed = _poll(lambda: (lambda img: img if difference(img, before_guest) > 3 else None)(_libvirt_screen(vm)),
                    30, "the guest's screen did not change after F1")
    after_canvas = _poll(lambda: (lambda img: img if difference(img, changed) < 25 else None)(_canvas(page)), 30,
                         "the canvas does not follow the guest's screen after F1")
    screenshot(page, "console-memtest-after-f1")
    assert difference(after_canvas, canvas) > 3


def test_console_window_page_and_refusal_message(portal, console_proxy, page, running_memtest) -> None:  # type: ignore[no-untyped-def]
    """The console's own window connects; when the VM is forced off the page shows why, and when it runs again
    the page reconnects by itself (a new one-time token each attempt)."""
    from tests.conftest import virsh

    vm = running_memtest
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/console/{vm.uuid}/")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
    virsh("destroy", vm.name)
    page.wait_for_function(
        "() => /shut off|display closed/i.test(document.querySelector('.console-state').textContent)", timeout=30_000)
    screenshot(page, "console-vm-off")
    virsh("start", vm.name)
    page.wait_for_selector(".console-state[data-state=connected]", timeout=60_000)
