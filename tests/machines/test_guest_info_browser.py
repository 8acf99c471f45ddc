"""The VM page's Guest section in Chromium: the page is complete while the guest part's request is still held
(the page never waits for the agent), the section fills in once the part answers, and it is read again when the
VM's state changes elsewhere (virsh destroy). axe-core finds nothing and the page does not scroll sideways at a
phone's width."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from tests.conftest import memtest_spec, virsh
from tests.live import axe_violations, login, screenshot
from tests.machines.test_vm_page_browser import check_widths
from tests.provisioning.test_create_browser import event_listener  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_guest_section_loads_after_the_page(portal, page, real_vm, event_listener) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    doc = memtest_spec()
    doc.add_device(hv.Channel.guest_agent())
    vm = real_vm(doc)
    virsh("start", vm.name)
    login(page, portal, "alice", "alice-pass-123")

    held = []
    page.route("**/part/guest/", lambda route: held.append(route))
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_selector("body[data-events='connected']")
    for _ in range(200):  # events.js asks for the part once the page is there
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page never asked for its guest part"
    assert page.locator("#vm-overview").is_visible()
    assert page.locator("#guest-loading").inner_text() == "Asking the guest agent…"
    assert page.locator("#vm-guest").get_attribute("aria-busy") == "true"

    for route in held:
        route.continue_()
    page.unroute("**/part/guest/")
    page.wait_for_selector("#guest-reason")
    text = page.locator("#vm-guest").inner_text()
    assert "The guest agent is not connected: it is not installed or not running in the guest." in text
    assert page.locator("#guest-loading").count() == 0
    check_widths(page, "vm-page-guest")

    virsh("destroy", vm.name)
    page.wait_for_function("() => (document.querySelector('#guest-reason') || {}).textContent"
                           "?.includes('The VM is not running.')")
    screenshot(page, "vm-page-guest-shut-off")
    assert axe_violations(page) == []
