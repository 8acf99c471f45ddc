"""In Chromium: alice takes a snapshot of her shut-off VM from its page's Snapshots section; the job runs in the
Celery worker and the snapshot appears in the tree, marked current. A second snapshot, taken while the page stays
open, appears in the tree without a reload (the section is re-read live when the job ends)."""
from __future__ import annotations

import pytest

from kvmweb.protection import snapshots
from tests.conftest import memtest_spec, virsh
from tests.live import login, screenshot
from tests.machines.test_vm_page_browser import check_widths

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_take_a_snapshot_from_the_page(portal, page, owner, real_vm, make_volume, celery_worker_proc) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec(disk=make_volume()))
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    assert page.locator("nav.vm-sections a[href='#vm-snapshots']").is_visible()
    form = page.locator("#snapshot-create")
    form.wait_for()
    assert page.locator("#vm-snapshots").inner_text().count("No snapshots.") == 1
    form.locator("input[name=name]").fill("before-change")
    form.locator("input[name=description]").fill("taken from the page")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#vm-snapshots li[data-snapshot='before-change'][data-current]", timeout=60_000)
    assert "before-change" in virsh("snapshot-list", vm.name, "--name")

    # the page stays open: a snapshot taken now (a job in the worker) shows up in the tree by itself, under the first
    page.evaluate("() => { window.kvmwebSnapshotMarker = 1; }")
    snapshots.snapshot_create(actor=owner, vm=vm, name="second", description="live")
    page.wait_for_selector("#vm-snapshots li[data-snapshot='second'][data-current].depth-1", timeout=60_000)
    assert page.evaluate("() => window.kvmwebSnapshotMarker") == 1, "the page was reloaded"
    assert page.locator("#vm-snapshots li[data-snapshot='before-change']:not([data-current])").count() == 1
    screenshot(page, "vm-snapshots")
    check_widths(page, "vm-snapshots")  # a phone's width too; axe-core finds nothing
