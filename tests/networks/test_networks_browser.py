"""A person in Chromium: staff define an isolated network and start it, a user attaches a VM to it, staff stop
and delete it. Screenshots land in test-artifacts/."""
from __future__ import annotations

import pytest

from tests.conftest import memtest_spec, virsh
from tests.live import login, screenshot
from tests.networks.conftest import net_name, short_bridge

pytestmark = [pytest.mark.browser, pytest.mark.real, pytest.mark.usefixtures("system_networks")]


def test_define_start_attach_stop_delete(portal, page, real_vm, owner, staff, browser_context) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    name, bridge = net_name("web"), short_bridge()

    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/networks/")
    page.click("#new-network")
    page.fill("#id_name", name)
    page.check("input[name=mode][value=isolated]")
    page.fill("#id_bridge", bridge)
    page.check("#id_allow_users")
    screenshot(page, "network-define-form")
    page.click("#define-network")
    page.wait_for_selector("#net-state:has-text('inactive')")
    assert virsh("net-info", name).count("Active:") == 1 and "no" in virsh("net-info", name).split("Active:")[1][:20]

    page.click("#net-start")
    page.wait_for_selector("#net-state:has-text('active')")
    assert page.locator("#net-state").inner_text() == "active"
    assert "yes" in virsh("net-info", name).split("Active:")[1].splitlines()[0]
    screenshot(page, "network-started")
    browser_context.clear_cookies()

    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_selector("#nic-add-button")
    page.select_option("#id_nic_network", name)
    page.select_option("#id_nic_model", "e1000")
    page.click("#nic-add-button")
    page.wait_for_selector(".messages:has-text('has a new NIC')")
    page.wait_for_selector(f"#nic-table td:has-text('{name}')")
    mac = page.locator("#nic-table tbody tr").first.get_attribute("data-mac")
    assert mac and mac in virsh("domiflist", vm.name, "--inactive")
    assert name in virsh("domiflist", vm.name, "--inactive")
    screenshot(page, "network-vm-nic-attached")
    page.goto(f"{portal.url}/networks/")
    assert page.locator(f"tr[data-network='{name}']").count() == 1
    assert page.locator("tr[data-network='default']").count() == 0  # not open to users
    browser_context.clear_cookies()

    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/networks/")
    page.locator(f"tr[data-network='{name}'] a").first.click()
    assert vm.name in page.locator("#net-vms").inner_text()
    assert page.locator("#net-delete").is_disabled()
    page.once("dialog", lambda d: d.accept())
    page.click("#net-stop")
    page.wait_for_selector("#net-state:has-text('inactive')")
    assert "no" in virsh("net-info", name).split("Active:")[1].splitlines()[0]
    screenshot(page, "network-stopped")
    page.once("dialog", lambda d: d.accept())
    page.click("#net-delete")
    page.wait_for_url(f"{portal.url}/networks/")
    assert f"The network {name} was deleted" in page.locator(".messages").inner_text()
    assert name not in virsh("net-list", "--all", "--name").split()
    screenshot(page, "network-deleted")
