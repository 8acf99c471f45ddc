"""A person in Chromium: grow a VM's disk from its page, then clone the VM and watch the job's progress bar."""
from __future__ import annotations

import os
import subprocess

import pytest

from kvmweb.machines.models import VirtualMachine
from tests.conftest import memtest_spec, unique_name, virsh
from tests.live import login, screenshot
from tests.storage.conftest import qemu_img_info

pytestmark = [pytest.mark.browser, pytest.mark.real]
G = 1024**3
M = 1024**2


def test_resize_and_clone_in_browser(portal, celery_worker_proc, page, open_pool, real_vm, owner,  # type: ignore[no-untyped-def]
                                     cleanup_domains) -> None:
    disk = f"{unique_name('br')}.qcow2"
    virsh("vol-create-as", open_pool["name"], disk, "512M", "--format", "qcow2")
    path = os.path.join(open_pool["path"], disk)
    subprocess.run(["qemu-io", "-c", "write -P 0x33 0 384M", path], check=True, capture_output=True)
    vm = real_vm(memtest_spec(disk=path))
    clone = unique_name("brclone")
    cleanup_domains.append(clone)
    clone_path = os.path.join(open_pool["path"], f"{clone}.qcow2")
    try:
        login(page, portal, "alice", "alice-pass-123")
        page.goto(f"{portal.url}/vms/{vm.uuid}/")
        row = page.locator("#vm-disks tr[data-target='vda']")
        row.locator("input[name=size]").fill("+1G")
        row.locator("button:has-text('Grow')").click()
        page.wait_for_selector(".messages:has-text('grew from 512 MiB to 1.5 GiB')")
        assert qemu_img_info(path)["virtual-size"] == G + 512 * M
        page.wait_for_selector("#vm-disks tr[data-target='vda'] [data-capacity='1610612736']")
        screenshot(page, "storage-disk-grown")

        page.click("#clone")
        page.fill("#id_name", clone)
        page.check("input[name=mode][value=full]")
        page.click("#clone-submit")
        page.wait_for_url(lambda url: "/jobs/" in url)
        seen: list[int] = []
        bar = page.locator("progress[data-job-progress]")
        state = page.locator("[data-job-state]")
        page.wait_for_function(
            "() => { const s = document.querySelector('[data-job-state]'); "
            "const p = document.querySelector('progress[data-job-progress]'); "
            "(window.__seen = window.__seen || []).push(p ? p.value : -1); "
            "return s && ['succeeded','failed','cancelled'].includes(s.textContent.trim()); }",
            polling=100, timeout=120_000,
        )
        seen = page.evaluate("window.__seen")
        screenshot(page, "storage-clone-done")
        assert state.inner_text().strip() == "succeeded"
        assert bar.get_attribute("value") == "100"
        assert seen == sorted(seen)  # the bar only moves forward
        assert clone in virsh("list", "--all", "--name").split()
        assert subprocess.run(["qemu-img", "compare", path, clone_path], capture_output=True).returncode == 0
        assert VirtualMachine.objects.get(name=clone).owner == owner
    finally:
        virsh("undefine", clone, check=False)
        virsh("vol-delete", clone_path, check=False)


def _upload_in_page(page, portal, pool: dict, image: str, name: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    login(page, portal, "alice", "alice-pass-123")
    page.goto(f"{portal.url}/storage/")
    page.click(f"tr[data-pool='{pool['name']}'] a")
    page.set_input_files("#volume-upload input[name=file]", image)
    page.fill("#volume-upload input[name=name]", name)
    page.click("#volume-upload button[type=submit]")


def test_upload_image_in_browser(portal, page, open_pool, owner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", str(image), "32M"], check=True, capture_output=True)
    # 9 MiB of data: the page sends the file in three 4 MiB pieces
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x7e 2M 9M", str(image)], check=True,
                   capture_output=True)
    assert image.stat().st_size > 8 * M
    name = f"{unique_name('brup')}.qcow2"
    try:
        _upload_in_page(page, portal, open_pool, str(image), name)
        page.wait_for_selector("#upload-status:has-text('Uploaded')")
        assert page.locator("#upload-progress").get_attribute("value") == "100"
        page.wait_for_selector(f"tr[data-volume='{name}']")
        screenshot(page, "storage-pool-uploaded")
        assert page.locator(f"tr[data-volume='{name}'] td").nth(1).inner_text() == "qcow2"
        path = os.path.join(open_pool["path"], name)
        assert qemu_img_info(path)["virtual-size"] == 32 * M
        assert subprocess.run(["qemu-img", "compare", str(image), path], capture_output=True).returncode == 0
    finally:
        virsh("vol-delete", name, "--pool", open_pool["name"], check=False)


def test_upload_refused_in_browser_leaves_nothing(portal, page, open_pool, owner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = tmp_path / "sneaky.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", str(image)],
                   check=True, capture_output=True)
    name = f"{unique_name('brup')}.qcow2"
    try:
        _upload_in_page(page, portal, open_pool, str(image), name)
        page.wait_for_selector("#upload-status:has-text('The upload failed')")
        assert "backing file" in page.locator("#upload-status").inner_text()
        screenshot(page, "storage-pool-upload-refused")
        assert not os.path.exists(os.path.join(open_pool["path"], name))
    finally:
        virsh("vol-delete", name, "--pool", open_pool["name"], check=False)
