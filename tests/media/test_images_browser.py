"""In Chromium: the media library's "Disk images" tab lists the images with their format and disk size, and staff
add a disk image already on the host (with a kernel to boot directly) through its form: they land on its job, which
succeeds."""
from __future__ import annotations

import pytest

from kvmweb.media.models import IsoImage
from tests.conftest import unique_name
from tests.live import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.real]


def test_images_tab_lists_and_registers(portal, page, staff, qemu_host, disk_file, celery_worker_proc) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.media.services import image_register

    listed = image_register(actor=staff, host=qemu_host, path=disk_file(size="2G"), os_variant="debian12")
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/media-library/")
    page.click("text=Disk images")
    page.wait_for_url(lambda url: url.endswith("/media-library/images/"))
    row = page.locator(f"tr[data-image-id='{listed.pk}']")
    cells = row.locator("td").all_inner_texts()
    assert cells[2:4] == ["qcow2", "2 GiB"] and cells[5] == "debian12", cells

    name = unique_name("reg")
    kernel = disk_file("vmlinuz", data=b"a kernel")
    page.select_option("#image-register select[name=host]", str(qemu_host.pk))
    page.fill("#image-register input[name=path]", disk_file(fmt="raw", size="1M"))
    page.fill("#image-register input[name=name]", name)
    page.fill("#image-register input[name=kernel]", kernel)
    page.fill("#image-register input[name=cmdline]", "console=ttyS0")
    screenshot(page, "image-library")
    page.click("#image-register button[type=submit]")
    page.wait_for_url(lambda url: "/jobs/" in url)
    page.wait_for_selector("#job-meta[data-state=succeeded]", timeout=60_000)
    image = IsoImage.objects.get(name=name)
    assert image.complete and (image.format, image.kernel, image.cmdline) == ("raw", kernel, "console=ttyS0")
    page.goto(f"{portal.url}/media-library/images/")
    assert "console=ttyS0" in page.locator(f"tr[data-image-id='{image.pk}']").inner_text()
    IsoImage.objects.filter(pk__in=[listed.pk, image.pk]).delete()  # registered files are only forgotten
