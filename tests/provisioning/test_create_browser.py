"""A person in Chromium fills the New VM wizard, watches the job to the end and the VM running — every part of the VM
page follows, with no reload and never buttons that disagree with the badge; then someone runs `virsh destroy`
outside the portal and the page shows "shut off" without a reload."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import unique_name, virsh
from tests.provisioning.helpers import stop
from tests.live import ARTIFACTS, ROOT, login, screenshot, server_env

pytestmark = [pytest.mark.browser, pytest.mark.real]


@pytest.fixture
def event_listener(portal, qemu_host) -> Iterator[subprocess.Popen[bytes]]:  # type: ignore[no-untyped-def]
    """`manage.py event_listener` on the test database, listening to qemu:///system."""
    env = server_env()
    env["KVMWEB_LOG_LEVEL"] = "INFO"
    log = ARTIFACTS / "event-listener.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "event_listener", "--rescan", "1"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "listening to domain events of qemu:///system" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "the event listener did not connect"
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)


# Records, after every change of the page, the badge's text and which power buttons exist: the header is swapped in
# one step, so a sample where they disagree is a defect the user would see.
HEADER_SAMPLES = """
window.__headerSamples = [];
new MutationObserver(() => {
  const badge = document.getElementById("vm-state");
  if (!badge) return;
  const sample = {badge: badge.textContent, start: !!document.getElementById("start"),
                  shutdown: !!document.getElementById("shutdown")};
  const last = window.__headerSamples[window.__headerSamples.length - 1];
  if (!last || JSON.stringify(last) !== JSON.stringify(sample)) window.__headerSamples.push(sample);
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def _header_disagreements(page) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    samples = page.evaluate("window.__headerSamples")
    assert samples, "no samples were recorded"
    return [s for s in samples if (s["badge"] == "running" and s["start"]) or (s["badge"] == "shut off" and s["shutdown"])]


def test_wizard_progress_running_then_virsh_destroy_shows_live(
    portal, page, qemu_host, owner, memtest_iso, test_pool, open_test_pool, celery_worker_proc, event_listener, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    qemu_host.domain_type = "qemu"  # memtest86+ runs under TCG here
    qemu_host.save()
    name = unique_name("wiz")
    cleanup_domains.append(name)
    try:
        login(page, portal, "alice", "alice-pass-123")
        page.goto(f"{portal.url}/vms/")
        page.click("#new-vm")
        page.select_option("#id_host", str(qemu_host.pk))
        page.fill("#id_name", name)
        page.fill("#id_os_variant", "generic")
        page.fill("#id_vcpus", "1")
        page.fill("#id_memory", "96")
        page.select_option("#id_memory_unit", "M")
        page.select_option("#id_iso", str(memtest_iso.pk))
        page.check("input[name=disk][value=new]")
        page.fill("#id_disk_size", "1")
        page.select_option("#id_disk_pool", test_pool["name"])
        assert page.is_checked("#id_start")
        screenshot(page, "create-wizard-filled")
        page.add_init_script(HEADER_SAMPLES)
        page.click("#create-submit")
        page.wait_for_url(lambda url: "/vms/new/" not in url)
        page.evaluate("window.__noReload = true")
        page.wait_for_selector("[data-job-id] [data-job-state]:has-text('succeeded')", timeout=90_000)
        assert page.locator("[data-job-id] progress").first.get_attribute("value") in ("100", None) or \
            page.evaluate("document.querySelector('[data-job-id] progress').value") == 100
        page.wait_for_selector("#vm-state:has-text('running')", timeout=30_000)
        assert virsh("domstate", name).strip() == "running"
        page.wait_for_selector("#force-off")  # the buttons follow the state without a reload
        # Every part that depends on the state follows it (finding 1 of issue 11), on the same page.
        page.wait_for_selector("#overview-state:has-text('running')")
        page.wait_for_selector("#vm-advanced tr:has(th:text-is('State')) td:text-is('running')")
        dom_id = virsh("domid", name).strip()
        page.wait_for_selector(f"#vm-advanced tr:has(th:text-is('Id')) td:text-is('{dom_id}')")
        assert page.locator("#vm-advanced tr:has(th:text-is('CPU time')) td").inner_text() != "-"
        page.wait_for_selector("#console-open-inline")
        assert page.locator("#console-off").count() == 0
        disk = "#vm-disks tr:has(td:text-is('disk')) [data-capacity]"
        page.wait_for_selector(disk)  # the new disk's size, read once the job made it
        assert page.locator(disk).get_attribute("data-capacity") == str(1024 ** 3)
        assert "being created" not in page.locator("main").inner_text()
        assert page.locator("#vm-overview [data-job-id]").count() == 0  # the finished job left the Overview
        assert page.evaluate("window.__noReload === true")
        assert _header_disagreements(page) == []
        screenshot(page, "create-vm-running")

        virsh("destroy", name)
        page.wait_for_selector("#vm-state:has-text('shut off')", timeout=10_000)
        assert page.evaluate("window.__noReload === true")  # the same page: no reload happened
        page.wait_for_selector("#start")  # the buttons followed the state: Start is offered again
        page.wait_for_selector("#overview-state:has-text('shut off')")
        assert _header_disagreements(page) == []
        screenshot(page, "create-vm-shut-off-live")
    finally:
        virsh("destroy", name, check=False)
        virsh("vol-delete", f"{name}.qcow2", "--pool", test_pool["name"], check=False)
