"""In Chromium: a user within a quota sees it on the VM list; on the page of a VM made without any drive she adds a
CD-ROM drive loaded with an ISO of the library, puts CD-ROM first in the boot order, starts the VM and it runs
from that medium."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.accounts.models import Quota
from tests.conftest import MEMTEST_ISO, unique_name, virsh
from tests.live import login, screenshot
from tests.media.conftest import memtest_iso  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_quota_line_then_add_a_cdrom_drive_and_boot_from_it(portal, page, owner, real_vm, memtest_iso) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    Quota.objects.create(user=owner, max_vms=3, max_vcpus=4)
    doc = hv.DomainDocument.new(name=unique_name("nocd"), domain_type="qemu", memory_kib=96 * 1024, vcpus=1)
    doc.add_device(hv.Graphics.vnc(listen="none"))
    vm = real_vm(doc)
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/vms/")
    assert page.locator("#quota-line").inner_text() == "Your quota: 1 of 3 VMs · 1 of 4 vCPUs"
    screenshot(page, "vm-list-quota")

    page.goto(f"{portal.url}/vms/{vm.uuid}/")
    form = page.locator("#cdrom-add")
    form.locator("select[name=iso]").select_option(f"lib:{memtest_iso.pk}")
    form.locator("button:has-text('Add CD-ROM drive')").click()
    page.wait_for_selector("#vm-disks tr[data-target='hda']")
    boot = page.locator("#boot-order")
    boot.locator("select[name=first]").select_option("cdrom")
    boot.locator("select[name=second]").select_option("hd")
    boot.locator("button:has-text('Save boot order')").click()
    page.wait_for_selector("#boot-order :text('cdrom → hd')")
    page.click("#start")
    page.wait_for_selector("#vm-state:has-text('running')", timeout=30_000)
    screenshot(page, "vm-cdrom-added-running")
    blocks = virsh("domblklist", doc.name, "--details")
    assert "cdrom" in blocks and MEMTEST_ISO in blocks
