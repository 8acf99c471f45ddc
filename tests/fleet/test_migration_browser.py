"""In Chromium: alice watches her running VM's page while staff move it live to the second host; the header ("on
HOST") and the Host section follow without a reload."""
from __future__ import annotations

import pytest

from kvmweb.fleet.migration import vm_migrate
from kvmweb.machines.services import vm_define, vm_start
from tests.conftest import memtest_spec
from tests.live import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_the_vm_page_follows_a_live_migration(portal, page, staff, owner, two_hosts, cleanup_domains,  # type: ignore[no-untyped-def]
                                              eager) -> None:
    local, second = two_hosts
    doc = memtest_spec(memory_kib=64 * 1024)
    cleanup_domains.append(doc.name)
    vm = vm_define(actor=owner, host=local, doc=doc)
    vm_start(actor=owner, vm=vm)
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.wait_for_selector("#vm-move [data-vm-host]")
    assert page.locator("#vm-facts strong").first.inner_text() == "local"
    assert page.locator("#vm-move [data-vm-host]").inner_text() == "local"
    assert page.locator("#vm-move-form").count() == 0  # alice may not move it (staff only)
    page.evaluate("() => { window.kvmwebMoveMarker = 1; }")

    job = vm_migrate(actor=staff, vm=vm, dest_host=second)  # runs here (eager) while the page stays open
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    page.wait_for_function("() => document.querySelector('#vm-facts strong')?.textContent === 'second'",
                           timeout=60_000)
    page.wait_for_function("() => document.querySelector('#vm-move [data-vm-host]')?.textContent === 'second'",
                           timeout=60_000)
    assert page.evaluate("() => window.kvmwebMoveMarker") == 1, "the page was reloaded"
    assert page.locator("#vm-state").inner_text().strip().lower() == "running"
    screenshot(page, "vm-migrated")


def test_staff_move_a_vm_from_its_page(portal, page, staff, owner, two_hosts, cleanup_domains,  # type: ignore[no-untyped-def]
                                       celery_worker_proc) -> None:
    local, second = two_hosts
    doc = memtest_spec(memory_kib=64 * 1024)
    cleanup_domains.append(doc.name)
    vm = vm_define(actor=owner, host=local, doc=doc)
    vm_start(actor=owner, vm=vm)
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    form = page.locator("#vm-move-form")
    form.wait_for()
    options = form.locator("select[name=host] option").all_inner_texts()
    assert options == ["any host (placement chooses)", "second"]
    form.locator("select[name=host]").select_option(label="second")
    form.locator("button[type=submit]").click()  # the job runs in the Celery worker; the page follows it
    page.wait_for_function("() => document.querySelector('#vm-move [data-job-state]')?.textContent === 'succeeded'",
                           timeout=90_000)
    page.wait_for_function("() => document.querySelector('#vm-move [data-vm-host]')?.textContent === 'second'",
                           timeout=60_000)
    assert page.locator("#vm-move progress").get_attribute("value") == "100"
    vm.refresh_from_db()
    assert vm.host == second
    screenshot(page, "vm-move-form")
