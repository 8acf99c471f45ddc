"""The Hosts pages in Chromium: the list (with the portal's key) and a host's page pass axe at 1366 and 390 px, keep
to the Content-Security-Policy and do not scroll sideways; a host is added over SSH through the form (its key's
fingerprint shown and confirmed) and removed again through the confirm dialog. Screenshots: test-artifacts/hosts-*."""
from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from kvmweb.hosts import identity
from kvmweb.hosts.models import Host
from tests.core.test_pages_browser import CSP_RECORDER, check_page
from tests.live import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_hosts_pages_and_adding_a_host_over_ssh(portal, page, staff, qemu_host, second_host_trusts_portal) -> None:  # type: ignore[no-untyped-def]
    h2 = second_host_trusts_portal
    address = f"[{h2.h2_ip}]:2222"
    expected = subprocess.run(["ssh-keygen", "-lf", str(h2.host_key)], capture_output=True, text=True,
                              check=True).stdout.split()[1]
    page.add_init_script(CSP_RECORDER)
    login(page, portal, "root-admin", "admin-pass-123")
    report: dict[str, Any] = {"hosts": check_page(page, "hosts-list", lambda: page.goto(f"{portal.url}/hosts/"))}
    assert identity.ssh_identity().public_key in page.input_value("#portal-key-line")
    try:
        def ask() -> Any:  # step 1: name and URI; the page answers with the host's key to confirm
            page.goto(f"{portal.url}/hosts/")
            page.fill("#id_name", "h2-ssh")
            page.fill("#id_uri", f"qemu+ssh://root@{h2.h2_ip}:2222/system")
            with page.expect_navigation() as nav:
                page.click("#host-add-submit")
            return nav.value
        report["confirm"] = check_page(page, "hosts-confirm", ask)
        assert page.text_content("#host-key-fingerprint") == expected  # what the host's own key file says
        assert identity.known_hosts_pinned(address) == []  # nothing pinned before the confirmation
        page.set_viewport_size({"width": 1366, "height": 860})
        page.click("#host-add-submit")
        page.wait_for_url(lambda url: "/hosts/add/" not in url)
        host = Host.objects.get(name="h2-ssh")
        assert page.url.endswith(f"/hosts/{host.pk}/") and "kvmweb-h2" in page.text_content("#host-facts")
        report["host"] = check_page(page, "hosts-detail", lambda: page.goto(f"{portal.url}/hosts/{host.pk}/"))
        report["local"] = check_page(page, "hosts-detail-local",
                                     lambda: page.goto(f"{portal.url}/hosts/{qemu_host.pk}/"))

        page.goto(f"{portal.url}/hosts/{host.pk}/")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#host-remove")
        page.wait_for_url(lambda url: url.rstrip("/").endswith("/hosts"))
        screenshot(page, "hosts-removed")
        assert "removed" in page.text_content(".messages")
        assert not Host.objects.filter(name="h2-ssh").exists() and identity.known_hosts_pinned(address) == []
    finally:
        identity.known_hosts_unpin(address)
    problems = {name: found for name, found in report.items() if found}
    assert not problems, json.dumps(problems, indent=1)
