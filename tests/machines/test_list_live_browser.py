"""The VM list follows libvirt without a reload: a VM defined with virsh appears, one undefined disappears."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from tests.conftest import memtest_spec, virsh
from tests.provisioning.test_create_browser import event_listener  # noqa: F401  (fixture)
from tests.live import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_list_shows_vms_defined_and_undefined_outside_the_portal(  # type: ignore[no-untyped-def]
    portal, page, staff, qemu_host, event_listener, cleanup_domains,  # noqa: F811
) -> None:
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/vms/")
    page.wait_for_selector("body[data-events='connected']")
    spec = memtest_spec()
    cleanup_domains.append(spec.name)
    dom = hv.domain_define(hv.registry.connection("qemu:///system"), spec)  # as `virsh define` would, outside the portal
    row = page.locator(f"tr[data-uuid='{dom.uuid}']")
    row.wait_for()
    assert "unowned" in row.inner_text() and "shut off" in row.inner_text()
    screenshot(page, "vm-list-live-defined")
    virsh("undefine", spec.name)
    row.wait_for(state="detached")
