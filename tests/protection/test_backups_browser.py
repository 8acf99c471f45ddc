"""A person in Chromium: back up a running VM from its page, watch the job, restore the backup as a new VM, delete
it."""
from __future__ import annotations

import pytest

from kvmweb.machines.models import VirtualMachine
from kvmweb.machines.services import vm_start
from kvmweb.protection.models import Backup
from tests.conftest import ARTIFACTS, memtest_spec, unique_name, virsh
from tests.live import login, screenshot
from tests.protection.test_backups_real import _backup_pool_volumes, _disk_with_data

pytestmark = [pytest.mark.browser, pytest.mark.real]
DONE = ("() => { const s = document.querySelector('[data-job-state]'); "
        "return s && ['succeeded','failed','cancelled'].includes(s.textContent.trim()); }")


def test_back_up_restore_and_delete_in_browser(portal, celery_worker_proc, page, open_pool, real_vm, owner,  # type: ignore[no-untyped-def]
                                               cleanup_domains) -> None:
    src = _disk_with_data(open_pool, size="64M")
    vm = real_vm(memtest_spec(disk=src))
    vm_start(actor=owner, vm=vm)
    restored = unique_name("brrestored")
    cleanup_domains.append(restored)
    page.set_default_timeout(60_000)  # a shared, busy machine: htmx loads and redirects may take a while
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    page.click("nav.vm-sections a[href='#vm-backups']")
    page.wait_for_selector("#vm-backups:has-text('No backups of')")
    page.click("#vm-backups button:has-text('Back up now')")
    page.wait_for_url(lambda url: "/jobs/" in url)
    page.wait_for_function(DONE, timeout=120_000)
    assert page.locator("[data-job-state]").inner_text().strip() == "succeeded"
    backup = Backup.objects.get(vm_uuid=vm.uuid)
    assert backup.live and virsh("domstate", vm.name).strip() == "running"

    page.goto(f"{portal.url}/vms/{vm.uuid}/#vm-backups")
    row = page.locator(f"#vm-backups tr[data-backup='{backup.pk}']")
    row.wait_for()
    assert "live (running)" in row.inner_text() and "complete" in row.inner_text()
    assert row.locator("text=shut it off to restore over it").count() == 1  # it runs: no restore over it
    screenshot(page, "protection-backups")
    page.locator("#vm-backups").screenshot(path=str(ARTIFACTS / "protection-backups-section.png"))
    row.locator("input[name=name]").fill(restored)
    row.locator("button:has-text('Restore as new VM')").click()
    page.wait_for_url(lambda url: "/jobs/" in url)
    page.wait_for_function(DONE, timeout=120_000)
    assert page.locator("[data-job-state]").inner_text().strip() == "succeeded"
    assert VirtualMachine.objects.get(name=restored).owner == owner
    new_path = ""

    page.goto(f"{portal.url}/vms/{vm.uuid}/#vm-backups")
    page.locator(f"#vm-backups tr[data-backup='{backup.pk}'] button:has-text('Delete')").click()
    page.wait_for_selector(".messages:has-text('deleted')")
    assert not Backup.objects.filter(pk=backup.pk).exists()
    assert _backup_pool_volumes() == []
    for line in virsh("domblklist", restored, "--details").splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] == "disk":
            new_path = parts[3]
    virsh("undefine", restored)
    if new_path:
        virsh("vol-delete", new_path)
