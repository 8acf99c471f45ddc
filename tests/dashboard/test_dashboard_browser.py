"""The dashboard in Chromium against the live portal and qemu:///system: staff see the local host's capacity as
``virsh nodeinfo`` says, a user sees their VMs and quota; both pages pass axe-core and fit a phone (390 px) without
sideways scroll; a VM started behind the page's back (``virsh start``) shows up as running on the open page without
a reload. Screenshots: test-artifacts/dashboard-*.png."""
from __future__ import annotations

import re

import pytest

from kvmweb.accounts.models import Quota
from tests.conftest import memtest_spec, unique_name, virsh
from tests.live import login, screenshot
from tests.machines.test_vm_page_browser import check_widths
from tests.provisioning.test_create_browser import event_listener  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.real]


def nodeinfo() -> dict[str, str]:
    """``virsh nodeinfo`` as a dict: 'CPU(s)' → '4', 'Memory size' → '8024312 KiB'..."""
    out = virsh("nodeinfo")
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def test_staff_dashboard(portal, page, staff, qemu_host, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec(name=unique_name("dash")))
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/")
    card = page.locator(f"article.dash-host[data-host='{qemu_host.name}']")
    card.wait_for()
    facts = nodeinfo()
    assert card.locator("[data-figure='cpus-capacity']").get_attribute("value") == facts["CPU(s)"]
    memory_kib = int(re.match(r"(\d+) KiB", facts["Memory size"]).group(1))  # type: ignore[union-attr]
    # libvirt's Python binding gives node memory in whole MiB (virsh: KiB)
    assert card.locator("[data-figure='memory-capacity']").get_attribute("value") == str(memory_kib // 1024 * 2**20)
    assert int(card.locator("[data-figure='cpus-allocated']").get_attribute("value") or 0) >= 1  # our VM at least
    assert card.locator("[data-fact='accel']").inner_text() in ("KVM", "TCG")
    version = virsh("version")
    hypervisor = re.search(r"Running hypervisor: (\S+ \S+)", version)
    assert hypervisor and card.locator("[data-fact='hypervisor']").inner_text() == hypervisor.group(1)
    assert page.locator("nav[aria-label=Portal] a").first.inner_text() == "kvmweb"
    assert page.locator("nav[aria-label=Portal] li a[aria-current=page]").inner_text() == "Dashboard"
    assert vm.name in page.locator("#dash-vms").inner_text()
    check_widths(page, "dashboard-staff")
    # a usage sample announced by events.js ("kvmweb:stats") has the hosts part read again, in place
    hosts = page.locator("#dash-hosts [data-part-url]")
    assert hosts.get_attribute("data-refreshed") is None
    page.evaluate("document.dispatchEvent(new CustomEvent('kvmweb:stats', {detail: {kind: 'stats', vms: []}}))")
    page.wait_for_selector("#dash-hosts [data-part-url][data-refreshed='1']")
    assert card.locator("[data-figure='cpus-capacity']").get_attribute("value") == facts["CPU(s)"]


def test_user_dashboard_stays_true_without_a_reload(  # type: ignore[no-untyped-def]
    portal, page, owner, other_user, real_vm, event_listener,  # noqa: F811
) -> None:
    mine = real_vm(memtest_spec(name=unique_name("dash-mine")))
    theirs = real_vm(memtest_spec(name=unique_name("dash-theirs")), user=other_user)
    Quota.objects.create(user=owner, max_vms=3, max_vcpus=4, max_memory_mib=1024, max_disk_gib=20)
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/")
    page.wait_for_selector("body[data-events='connected']")
    vms = page.locator("#dash-vms")
    assert mine.name in vms.inner_text() and theirs.name not in page.locator("main").inner_text()
    assert page.locator("#dash-hosts").count() == 0
    row = vms.locator(f"li[data-uuid='{mine.uuid}'] .state")
    assert row.inner_text() == "shut off"
    assert page.locator("#dash-quota tr[data-quota='vms'] [data-figure='quota-used']").get_attribute("value") == "1"
    check_widths(page, "dashboard-user")

    virsh("start", mine.name)  # behind the page's back: the event reaches the page, the part is read again
    page.locator(f"#dash-vms li[data-uuid='{mine.uuid}'] .state:text-is('running')").wait_for()
    assert page.locator("#dash-vms [data-state-count='running']").inner_text() == "1 running"
    screenshot(page, "dashboard-user-live")
    virsh("destroy", mine.name)
    page.locator(f"#dash-vms li[data-uuid='{mine.uuid}'] .state:text-is('shut off')").wait_for()
