"""A person opens the console of a memtest86+ guest (TCG, VNC listen='none') in Chromium: the canvas shows the
guest's screen as libvirt sees it, and F1 pressed in the console changes the guest's screen. The VM page loads noVNC
only when "Console" is pressed; the console pages fit a phone's width and pass axe-core."""
from __future__ import annotations

import time

import numpy as np
import pytest

from kvmweb.machines.handles import vm_handle
from tests.conftest import memtest_spec
from tests.live import ARTIFACTS, axe_violations, login, screenshot
from tests.provisioning.test_create_browser import event_listener  # noqa: F401  (fixture)

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


def test_vm_page_loads_novnc_only_when_the_console_opens(portal, console_proxy, page, running_memtest) -> None:  # type: ignore[no-untyped-def]
    """Issue 11, finding 10: the VM page fetched ~52 noVNC modules before anyone opened the console. Now it loads
    none; pressing "Console" imports console.js and noVNC, which connect and show the guest's screen."""
    vm = running_memtest
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    login(page, portal, "alice", "alice-pass-123")
    fetched.clear()
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("#console-thumbnail").is_visible()
    on_load = list(fetched)
    assert [u for u in on_load if "/static/console/vm_section.js" in u], on_load
    assert not [u for u in on_load if "novnc" in u.lower()], on_load
    assert not [u for u in on_load if "/static/console/console.js" in u], on_load

    page.click("#console-open-inline")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
    novnc = [u for u in fetched if "/static/vendor/novnc/" in u]
    assert [u for u in novnc if u.endswith("/core/rfb.js")], novnc
    assert page.get_attribute("#console-open-inline", "aria-expanded") == "true"
    assert page.locator("#console-thumbnail").is_hidden()
    canvas = _poll(lambda: (lambda img: None if is_flat(img) else img)(_canvas(page)), 60,
                   "the console canvas stays flat")
    ours = _libvirt_screen(vm)
    canvas = _canvas(page)
    assert difference(canvas, ours) < 25, "the canvas does not look like libvirt's screenshot"
    print(f"VM page load: {len(on_load)} requests, none of noVNC; opening the console: {len(novnc)} noVNC modules")
    # A second press neither loads nor mounts anything again.
    count = len(fetched)
    page.click("#console-open-inline")
    page.wait_for_timeout(500)
    assert page.locator(".kvm-console canvas").count() == 1 and len(fetched) == count


def _fits(page) -> None:  # type: ignore[no-untyped-def]
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths[0]} px wide in a {widths[1]} px window"


def _csp_reports(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Collects what Chromium says about the Content-Security-Policy (report-only or enforced) on this page."""
    said: list[str] = []
    page.on("console", lambda msg: said.append(f"{page.url}: {msg.text} (at {msg.location['url']})")
            if "Content Security Policy" in msg.text else None)
    return said


# xterm.js (the text console) writes its own <style> elements and style attributes, which a style-src 'self'
# policy reports (or, enforced, blocks); nothing else on the console pages may.
def _not_xterm_styles(reports: list[str]) -> list[str]:
    return [r for r in reports if not ("inline style" in r and "/static/vendor/xterm/" in r)]


@pytest.mark.parametrize("width", [1366, 390])
def test_console_pages_fit_the_window(width: int, portal, console_proxy, page, real_vm, owner) -> None:  # type: ignore[no-untyped-def]
    """The console page, its paste dialog and the text console at a desktop width and a phone's: nothing scrolls
    sideways (the toolbar wraps, the guest's screen is scaled into the page), axe-core finds no violation, and the
    Content-Security-Policy (no inline script) has nothing to report."""
    from kvmweb.machines.services import vm_start

    vm = real_vm(memtest_spec(serial_console=True))
    vm_start(actor=owner, vm=vm)
    csp = _csp_reports(page)
    page.set_viewport_size({"width": width, "height": 860 if width > 800 else 844})
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/console/{vm.uuid}/")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
    _poll(lambda: (lambda img: None if is_flat(img) else img)(_canvas(page)), 60, "the console canvas stays flat")
    box = page.locator(".console-screen canvas").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
    _fits(page)
    screenshot(page, f"console-{width}")
    assert axe_violations(page) == [], f"console page at {width} px"

    page.click("[data-action=paste]")
    page.fill(".console-paste textarea", "echo Grüße\tfrom the console\n")
    page.wait_for_selector(".console-paste-skipped:visible")
    assert "ü (U+00FC)" in page.inner_text(".console-paste-skipped")
    assert "ß (U+00DF)" in page.inner_text(".console-paste-skipped")
    assert page.inner_text(".console-paste-count") == "26 keys to type."
    _fits(page)
    screenshot(page, f"console-paste-dialog-{width}")
    assert axe_violations(page) == [], f"paste dialog at {width} px"
    page.click(".console-paste button[value=cancel]")
    assert page.locator(".console-typing").is_hidden()  # Cancel types nothing

    # A long text shows its progress and can be stopped half-way.
    page.click("[data-action=paste]")
    page.fill(".console-paste textarea", "x" * 200)
    page.fill(".console-paste input[name=delay]", "200")
    page.click(".console-paste button[value=type]")
    page.wait_for_selector(".console-typing progress:visible")
    page.wait_for_function("() => window.kvmConsole.typing && window.kvmConsole.typing.typed >= 3")
    _fits(page)
    screenshot(page, f"console-typing-{width}")
    assert axe_violations(page) == [], f"typing progress at {width} px"
    page.click("[data-action=stop-typing]")
    page.wait_for_selector(".console-typing-text:has-text('Cancelled')")
    job = page.evaluate("() => window.kvmConsole.lastTyping")
    assert job["cancelled"] and 3 <= job["typed"] < 200 and job["delay"] == 200, job

    page.goto(f"{portal.url}/console/{vm.uuid}/text/")
    page.wait_for_selector(".kvm-terminal .console-state[data-state=connected]")
    _fits(page)
    screenshot(page, f"console-text-{width}")
    assert axe_violations(page, exclude=(".xterm-helper-textarea",)) == [], f"text console at {width} px"

    # The VM page's console section fits too (the rest of the VM page is another app's).
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.click("#console-open-inline")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
    right = page.evaluate("() => { const s = document.getElementById('console-section');"
                          " return [s.getBoundingClientRect().right, s.scrollWidth, s.clientWidth]; }")
    assert right[0] <= width + 0.5 and right[1] <= right[2], right
    page.locator("#console-section").screenshot(path=str(ARTIFACTS / f"console-vm-section-{width}.png"))
    print("CSP reports:", len(csp), "of them from xterm.js's styles" if csp else "")
    assert _not_xterm_styles(csp) == [], csp


def test_console_opens_after_the_vm_starts_on_an_open_page(portal, console_proxy, page, real_vm, owner,  # type: ignore[no-untyped-def]
                                                           event_listener) -> None:  # noqa: F811
    """The VM page is opened while the VM is shut off; it starts elsewhere; the page re-renders the console section
    (events) and its "Console" button works, though the section arrived after the page loaded."""
    from kvmweb.machines.services import vm_start

    vm = real_vm(memtest_spec())
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_selector("#console-off")
    page.wait_for_selector("body[data-events='connected']")
    vm_start(actor=owner, vm=vm)
    page.wait_for_selector("#console-open-inline", timeout=30_000)
    page.click("#console-open-inline")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
    _poll(lambda: (lambda img: None if is_flat(img) else img)(_canvas(page)), 60, "the console canvas stays flat")


def test_viewer_console_says_view_only_and_offers_no_input(portal, console_proxy, page, running_memtest, owner,  # type: ignore[no-untyped-def]
                                                           other_user) -> None:
    """Bob, a viewer, watches the guest's screen; the toolbar says View only and has nothing that types (the proxy
    enforces it: tests/console/test_view_only_real.py)."""
    from kvmweb.machines.services import vm_share

    vm = running_memtest
    vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    login(page, portal, "bob", "bob-pass-123")
    page.goto(f"{portal.url}/console/{vm.uuid}/")
    page.wait_for_selector(".console-state[data-state=connected]", timeout=30_000)
    _poll(lambda: None if is_flat(_canvas(page)) else True, 60, "a viewer's console canvas stays flat")
    assert page.locator(".console-viewonly").is_visible() and page.locator(".console-viewonly").inner_text() == "View only"
    for control in ("cad", "fkey", "paste"):
        assert not page.locator(f"[data-action={control}]").is_visible(), control
    assert page.evaluate("() => window.kvmConsole.viewOnly && window.kvmConsole.rfb.viewOnly")
    screenshot(page, "console-view-only")
