"""The VM page and the list as a live control panel, in Chromium against real guests: a VM deleted in another tab,
bulk and per-row actions on the list, thumbnails of running VMs, and both pages at a desktop's and a phone's width
(axe-core: no violation; no sideways scroll)."""
from __future__ import annotations

import pytest

from kvmweb.audit.models import AuditEntry
from tests.conftest import memtest_spec, unique_name, virsh
from tests.live import axe_violations, login, screenshot
from tests.provisioning.test_create_browser import event_listener  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.real]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 860}


def overflow(page) -> int:  # type: ignore[no-untyped-def]
    """How many pixels the page is wider than the window (0: no sideways scroll)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def check_widths(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The page as it is, at 1366 and 390 px: screenshots, no overflow at either width, no axe-core violation."""
    for label, size in (("1366", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(100)
        screenshot(page, f"{name}-{label}")
        assert overflow(page) == 0, f"{name} is {overflow(page)} px too wide at {label} px"
        assert axe_violations(page) == [], f"{name} at {label} px"
    page.set_viewport_size(DESKTOP)


def test_vm_deleted_in_another_tab(portal, page, browser_context, real_vm, event_listener) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    vm = real_vm(memtest_spec())
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_selector("body[data-events='connected']")
    check_widths(page, "vm-page")
    assert page.locator("#vm-deleted").is_hidden()

    other = browser_context.new_page()
    other.goto(f"{portal.url}/vms/{vm.uuid}/delete/")
    other.check("#id_confirm")
    other.click("#confirm-delete")
    other.wait_for_url(f"{portal.url}/vms/")
    other.close()

    page.wait_for_selector("#vm-deleted", state="visible")
    assert "This VM was deleted" in page.locator("#vm-deleted").inner_text()
    assert page.locator("#vm-state").inner_text() == "deleted"
    assert "undefined" not in page.locator("main").inner_text()
    # every action is off; the way back to the list stays
    assert page.locator("#vm-page button").count() > 0
    assert page.locator("#vm-page button:enabled, #vm-page input:enabled, #vm-page select:enabled").count() == 0
    assert page.locator("#vm-page a[href]:not(#vm-deleted a):not(nav a)").count() == 0
    assert page.locator("#vm-deleted a[href='/vms/']").count() == 1
    screenshot(page, "vm-page-deleted-elsewhere")
    assert vm.name not in virsh("list", "--all", "--name").split()


def test_list_bulk_force_off_row_actions_and_thumbnails(  # type: ignore[no-untyped-def]
    portal, page, real_vm, owner, event_listener,  # noqa: F811
) -> None:
    tag = unique_name("bulk")
    vms = [real_vm(memtest_spec(name=f"{tag}-{i}")) for i in range(5)]
    quiet = real_vm(memtest_spec(name=f"{tag}-off"))  # stays shut off: no thumbnail for it
    for vm in vms:
        virsh("start", vm.name)
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/?name={tag}")
    page.wait_for_selector("body[data-events='connected']")
    rows = page.locator("#vm-table tbody tr[data-uuid]")
    assert rows.count() == 6
    for vm in vms:
        row = page.locator(f"tr[data-uuid='{vm.uuid}']")
        assert row.locator(".state").inner_text() == "running"
        assert row.locator("button", has_text="Force off").count() == 1
        assert row.locator("img[data-thumb]").count() == 1
    off_row = page.locator(f"tr[data-uuid='{quiet.uuid}']")
    assert off_row.locator("img").count() == 0 and off_row.locator("button", has_text="Start").count() == 1
    # the thumbnails are real screenshots (PNG decoded by the browser)
    page.wait_for_function("() => [...document.querySelectorAll('img[data-thumb]')].every((i) => i.complete && i.naturalWidth > 0)")
    check_widths(page, "vm-list")

    # the bulk buttons wait for a tick; "tick all" ticks the page's rows
    assert page.locator("[data-bulk-action]:enabled").count() == 0
    page.check("#bulk-all")
    assert page.locator("#bulk-count").inner_text() == "6 VMs ticked:"
    page.uncheck("#bulk-all")
    assert page.locator("input[name=uuid]:checked").count() == 0
    for vm in vms:
        page.check(f"input[name=uuid][value='{vm.uuid}']")
    assert page.locator("#bulk-count").inner_text() == "5 VMs ticked:"
    screenshot(page, "vm-list-bulk-ticked")
    page.once("dialog", lambda d: d.accept())
    page.click("[data-bulk-action][value='force-off']")
    page.wait_for_url(f"{portal.url}/vms/?name={tag}")
    messages = page.locator(".messages .msg")
    texts = messages.all_inner_texts()
    assert "force-off: 5 of 5 VMs done." in texts
    for vm in vms:
        assert f"{vm.name}: {vm.name} was forced off." in texts
        assert virsh("domstate", vm.name).strip() == "shut off"
        assert AuditEntry.objects.filter(action="vm.force_off", target__endswith=str(vm.uuid), ok=True).count() == 1
    screenshot(page, "vm-list-bulk-done")
    page.wait_for_function("() => document.querySelectorAll('img[data-thumb]').length === 0")

    # per-row action: Start on one row, and the page comes back to the same filtered list
    first = page.locator(f"tr[data-uuid='{vms[0].uuid}']")
    first.locator("button", has_text="Start").click()
    page.wait_for_url(f"{portal.url}/vms/?name={tag}")
    assert virsh("domstate", vms[0].name).strip() == "running"
    page.locator(f"tr[data-uuid='{vms[0].uuid}'] .state:text-is('running')").wait_for()
    virsh("destroy", vms[0].name)
    page.locator(f"tr[data-uuid='{vms[0].uuid}'] .state:text-is('shut off')").wait_for()  # live, no reload


def test_shutdown_with_deadline_forces_off_and_the_list_shows_it(  # type: ignore[no-untyped-def]
    portal, page, real_vm, celery_worker_proc, event_listener,  # noqa: F811
) -> None:
    vm = real_vm(memtest_spec())  # memtest86+ ignores the ACPI power button: only the deadline stops it
    virsh("start", vm.name)
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_selector("body[data-events='connected']")
    page.check("#force-after")
    page.fill("#force-after-seconds", "4")
    screenshot(page, "vm-page-shutdown-deadline")
    page.click("#shutdown")
    page.wait_for_url(f"{portal.url}/vms/{vm.uuid}/")
    job = page.locator("#vm-overview [data-job-id]")
    job.wait_for()
    assert "force off after 4 s" in job.inner_text()
    # meanwhile the list says what the VM is doing
    listing = page.context.new_page()
    listing.goto(f"{portal.url}/vms/?name={vm.name}")
    assert "force off after 4 s" in listing.locator(f"tr[data-uuid='{vm.uuid}'] .doing").inner_text()
    screenshot(listing, "vm-list-doing")
    listing.locator(f"tr[data-uuid='{vm.uuid}'] .doing").wait_for(state="detached", timeout=30_000)  # live
    listing.close()
    page.wait_for_selector("#vm-state:text-is('shut off')", timeout=30_000)
    assert virsh("domstate", vm.name).strip() == "shut off"
    page.wait_for_selector("#vm-activity [data-job-state]:text-is('succeeded')")
    assert page.locator("#vm-overview [data-job-id]").count() == 0
    assert AuditEntry.objects.filter(action="vm.shutdown", target__endswith=str(vm.uuid)).count() == 1
