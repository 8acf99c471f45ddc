"""A person in Chromium: log in, see the list, start a real guest, see it running, force it off, delete it."""
from __future__ import annotations

import pytest

from tests.conftest import memtest_spec, unique_name, virsh
from tests.live import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_login_list_start_force_off_delete(portal, page, real_vm, owner) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    for tag in ("web", "db"):  # neighbours, so the list screenshot shows more than one row
        real_vm(memtest_spec(name=unique_name(tag), vcpus=2, memory_kib=512 * 1024))
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/")
    row = page.locator(f"tr[data-uuid='{vm.uuid}']")
    assert row.locator(".state").inner_text() == "shut off"
    screenshot(page, "vm-list")

    row.locator("td.col-name > a").click()
    page.click("#start")
    page.wait_for_selector("#vm-state:has-text('running')")
    assert virsh("domstate", vm.name).strip() == "running"
    page.goto(f"{portal.url}/vms/")
    assert page.locator(f"tr[data-uuid='{vm.uuid}'] .state").inner_text() == "running"
    screenshot(page, "vm-list-running")

    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.once("dialog", lambda d: d.accept())
    page.click("#force-off")
    page.wait_for_selector("#vm-state:has-text('shut off')")
    assert virsh("domstate", vm.name).strip() == "shut off"

    page.click("#delete")
    page.check("#id_confirm")
    page.click("#confirm-delete")
    page.wait_for_url(f"{portal.url}/vms/")
    assert vm.name in page.locator(".messages").inner_text()
    assert page.locator(f"tr[data-uuid='{vm.uuid}']").count() == 0
    assert vm.name not in virsh("list", "--all", "--name").split()
