"""Sharing a VM with roles, in Chromium against a real guest on qemu:///system: alice shares her VM with bob as
viewer from the Sharing section, bob (his own browser context, his own session) sees it in his list and on its page
without a power button or the Sharing form, and his hand-made POST to Start is refused while libvirt keeps the
guest shut off. alice makes him operator: bob's open page gains the power buttons live (no reload), he starts the
guest with the button and libvirt runs it, he forces it off, and Delete never appears for him. Bob's view at 1366
and 390 px: screenshots, no sideways scroll, no axe-core violation."""
from __future__ import annotations

import re

import pytest

from kvmweb.audit.models import AuditEntry
from kvmweb.machines.models import VmShare
from tests.conftest import memtest_spec, virsh
from tests.live import ARTIFACTS, login, screenshot
from tests.machines.test_vm_page_browser import DESKTOP, PHONE, check_widths, overflow

pytestmark = [pytest.mark.browser, pytest.mark.real]

# What only an operator (or more) may press in the VM page's header, and what only the owner and staff may use.
POWER = ("#start", "#shutdown", "#reboot", "#force-off", "#autostart")
OWNER_ONLY = ("#delete", "#share-form", "#share-table", "#share-submit", ".share-remove", ".share-role")


def domstate(name: str) -> str:
    return virsh("domstate", name).strip()


def csrf_post(page, url: str):  # type: ignore[no-untyped-def]
    """A POST made by hand with the session and the CSRF token of ``page`` (what a curious user could send
    without any button): the response, redirects not followed."""
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    return page.request.post(url, form={"csrfmiddlewaretoken": token}, headers={"X-CSRFToken": token},
                             max_redirects=0)


def sharing_fits(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """The Sharing section at a phone's width: inside the window, and a screenshot of it."""
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(100)
    section = page.locator("#vm-sharing")
    section.scroll_into_view_if_needed()
    box = section.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert overflow(page) == 0, f"{name} is {overflow(page)} px too wide at 390 px"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / f"{name}-section-390.png"))
    page.set_viewport_size(DESKTOP)


def test_share_as_viewer_then_operator(portal, page, browser_context, real_vm, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())  # defined, shut off
    assert domstate(vm.name) == "shut off"
    vm_url = f"{portal.url}/vms/{vm.uuid}/"
    bob_ctx = browser_context.browser.new_context(viewport=DESKTOP)  # a second, separate session
    try:
        bob = bob_ctx.new_page()
        bob.set_default_timeout(20_000)

        # ---- bob, before: the VM is not his to see (a 404, as for a VM that does not exist)
        login(bob, portal, "bob", "bob-pass-123")
        bob.goto(f"{portal.url}/vms/")
        bob.wait_for_selector("body[data-events='connected']")
        assert bob.locator(f"tr[data-uuid='{vm.uuid}']").count() == 0
        assert bob.request.get(vm_url).status == 404

        # ---- alice shares it with bob as viewer from the Sharing section
        login(page, portal, "alice", "alice-pass-123")
        page.goto(vm_url)
        page.wait_for_selector("body[data-events='connected']")
        sharing = page.locator("#vm-sharing")
        assert sharing.locator("#share-none").is_visible()
        sharing.locator("#id_user").fill("bob")
        sharing.locator("#id_role").select_option("viewer")
        sharing.locator("#share-submit").click()
        page.wait_for_url(re.compile(re.escape(vm_url) + "#vm-sharing$"))
        assert f"{vm.name} is shared with bob as viewer." in page.locator(".messages").inner_text()
        row = page.locator("#share-table tr[data-share-name='bob']")
        assert row.count() == 1
        assert row.locator("select[name=role]").input_value() == "viewer"
        assert "alice" in row.inner_text()  # shared by
        assert page.locator("#share-none").count() == 0
        share = VmShare.objects.get(vm__uuid=vm.uuid, user=other_user)
        assert share.role == "viewer" and share.created_by == owner
        check_widths(page, "sharing-owner")
        sharing_fits(page, "sharing-owner")

        # ---- bob: the VM came into his open list by itself (the "shared" event), as view only
        bob_row = bob.locator(f"tr[data-uuid='{vm.uuid}']")
        bob_row.wait_for()
        assert "your role: viewer" in bob_row.inner_text()
        assert "view only" in bob_row.locator(".row-actions").inner_text()
        assert bob_row.locator(".row-actions button, input[name=uuid]").count() == 0
        bob_row.locator(f"a[href='/vms/{vm.uuid}/']").click()
        bob.wait_for_url(vm_url)
        bob.wait_for_selector("body[data-events='connected']")
        assert bob.locator("#vm-state").inner_text() == "shut off"
        assert bob.locator("#vm-head").get_attribute("data-role") == "viewer"
        assert bob.locator("#vm-your-role").inner_text() == "your role: viewer"
        assert bob.locator("#vm-view-only").is_visible()
        for selector in POWER + OWNER_ONLY + ("#clone",):
            assert bob.locator(selector).count() == 0, f"a viewer sees {selector}"
        assert bob.locator("#vm-sharing #share-hint").inner_text() == "Shared with you as viewer by alice."
        cdrom = bob.locator("#vm-disks tr[data-target='sda']")  # the disks part, loaded by htmx
        cdrom.wait_for()
        assert cdrom.locator("form, select, button").count() == 0, "a viewer may change the CD-ROM"
        check_widths(bob, "sharing-bob-viewer")
        sharing_fits(bob, "sharing-bob-viewer")

        # a start sent by hand is refused, and libvirt's guest does not move
        refused = csrf_post(bob, f"{vm_url}start/")
        assert refused.status == 403, refused.status
        assert "your role on it is viewer" in refused.text()  # refused for the role, not for a bad CSRF token
        # so are the owner's own doors: sharing further, deleting
        reshare = csrf_post(bob, f"{vm_url}shares/")
        assert reshare.status == 403 and "your role on it is viewer" in reshare.text()
        assert bob.request.get(f"{vm_url}delete/").status == 403
        assert domstate(vm.name) == "shut off"
        assert list(VmShare.objects.filter(vm__uuid=vm.uuid).values_list("user__username", "role")) == [
            ("bob", "viewer")]
        assert not AuditEntry.objects.filter(action="vm.start", target__endswith=str(vm.uuid), ok=True).exists()

        # ---- alice makes bob an operator; bob's page, left open, follows without a reload
        bob.evaluate("() => { window.__sameDocument = true; }")
        row = page.locator("#share-table tr[data-share-name='bob']")
        row.locator("select[name=role]").select_option("operator")
        row.locator("button[type=submit]", has_text="Change").click()
        page.wait_for_url(re.compile(re.escape(vm_url) + "#vm-sharing$"))
        assert f"{vm.name} is now shared with bob as operator." in page.locator(".messages").inner_text()
        assert page.locator("#share-table tr[data-share-name='bob'] select[name=role]").input_value() == "operator"
        assert VmShare.objects.get(pk=share.pk).role == "operator"
        assert VmShare.objects.filter(vm__uuid=vm.uuid).count() == 1  # changed, not a second share

        bob.locator("#vm-actions #start").wait_for()
        assert bob.evaluate("() => window.__sameDocument === true"), "bob's page was reloaded, not updated live"
        assert bob.locator("#vm-head").get_attribute("data-role") == "operator"
        assert bob.locator("#vm-your-role").inner_text() == "your role: operator"
        bob.locator("#vm-sharing #share-hint:text-is('Shared with you as operator by alice.')").wait_for()
        assert bob.locator("#vm-view-only").count() == 0
        # an operator changes CD-ROM media (re-read live as well), but not the drive itself: that is a manager's
        cdrom.locator("select[name=iso]").wait_for()
        assert cdrom.locator("select[name=bus], .cdrom-remove").count() == 0
        for selector in OWNER_ONLY + ("#clone",):
            assert bob.locator(selector).count() == 0, f"an operator sees {selector}"
        check_widths(bob, "sharing-bob-operator")
        sharing_fits(bob, "sharing-bob-operator")

        # bob starts the guest with the button: libvirt runs it
        bob.locator("#start").click()
        bob.wait_for_url(vm_url)
        bob.locator("#vm-state:text-is('running')").wait_for()
        assert domstate(vm.name) == "running"
        started = AuditEntry.objects.filter(action="vm.start", target__endswith=str(vm.uuid), ok=True)
        assert [e.actor_name for e in started] == ["bob"]
        for selector in ("#shutdown", "#reboot", "#force-off"):
            assert bob.locator(selector).is_visible(), selector
        assert bob.locator("#start").count() == 0
        for selector in OWNER_ONLY + ("#clone",):
            assert bob.locator(selector).count() == 0, f"an operator sees {selector}"
        screenshot(bob, "sharing-bob-operator-running-1366")

        # and forces it off (after the question): libvirt stops it
        bob.once("dialog", lambda d: d.accept())
        bob.locator("#force-off").click()
        bob.wait_for_url(vm_url)
        bob.locator("#vm-state:text-is('shut off')").wait_for()
        assert domstate(vm.name) == "shut off"
        assert AuditEntry.objects.filter(action="vm.force_off", target__endswith=str(vm.uuid), ok=True,
                                         actor_name="bob").count() == 1
        assert bob.locator("#start").is_visible() and bob.locator("#delete").count() == 0
        assert bob.request.get(f"{vm_url}delete/").status == 403
        assert vm.name in virsh("list", "--all", "--name").split()  # bob could not delete it
    finally:
        bob_ctx.close()
