"""In Chromium: staff upload an ISO from the library page (pieces, progress bar to the end), see it listed, delete
it; then register a file already on the host and land on its job, which succeeds."""
from __future__ import annotations

import filecmp
import os

import pytest

from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from tests.conftest import MEMTEST_ISO, unique_name
from tests.live import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.real]

PIECE = 16 * 1024 * 1024  # what static/media/upload.js sends
SIZE = 3 * PIECE + 12345  # four pieces, the last one short


def test_upload_with_progress_then_delete(portal, page, staff, qemu_host, iso_pool_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / f"{unique_name('up')}.iso"
    source.write_bytes(os.urandom(SIZE))
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/media-library/")
    # Every value the progress bar takes, in order (too quick to catch by polling; the page reloads at the end).
    values: list[int] = []
    page.expose_function("reportBar", lambda value: values.append(int(value)))
    page.evaluate("""() => { const bar = document.getElementById('upload-progress');
        new MutationObserver(() => window.reportBar(Number(bar.value))).observe(bar, {attributes: true}); }""")
    page.select_option("#upload-host", str(qemu_host.pk))
    page.set_input_files("#upload-file", str(source))
    page.click("#upload-submit")
    page.wait_for_selector(f"tr:has-text('{source.name}')", timeout=60_000)  # the page reloaded with the new row
    assert values[-1] == 100 and values == sorted(values) and any(0 < v < 100 for v in values), values
    iso = IsoImage.objects.get(name=source.name)
    assert iso.complete and iso.size == SIZE and iso.path == f"{iso_pool_dir}/{source.name}"
    assert filecmp.cmp(source, iso.path, shallow=False)

    row = page.locator(f"tr[data-iso-id='{iso.pk}']")
    assert "48.01 MiB" in row.inner_text() and "root-admin" in row.inner_text()
    screenshot(page, "iso-library")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    page.wait_for_selector(f"text={source.name} was removed from the ISO library")
    assert not IsoImage.objects.filter(pk=iso.pk).exists() and not os.path.exists(iso.path)


def test_register_a_host_file_opens_its_job(portal, page, staff, qemu_host, celery_worker_proc) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('reg')}.iso"
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/media-library/")
    page.select_option("select[name=host]", str(qemu_host.pk))
    page.fill("input[name=path]", MEMTEST_ISO)
    page.fill("input[name=name]", name)
    page.click("text=Add to the library")
    page.wait_for_url(lambda url: "/jobs/" in url)
    page.wait_for_selector("[data-job-id] [data-job-state]:has-text('succeeded')", timeout=60_000)
    page.wait_for_selector("#job-meta[data-state=succeeded]")  # its finish time too, without a reload
    assert "—" not in page.locator("#job-meta tr", has_text="Finished").inner_text()
    shown = [text.split(" ", 1)[1] for text in page.locator("[data-job-log] li").all_inner_texts()]
    job = Job.objects.get(kind="iso.import", target=str(IsoImage.objects.get(name=name).pk))
    assert shown == [line.message for line in job.lines.order_by("pk")]  # none lost between render and socket
    screenshot(page, "iso-register-job")
    iso = IsoImage.objects.get(name=name)
    assert iso.complete and iso.registered and iso.path == MEMTEST_ISO and iso.size == os.path.getsize(MEMTEST_ISO)
    iso.delete()  # a registered file is only forgotten, never deleted


def test_upload_survives_a_lost_piece_and_a_lost_answer(portal, page, staff, qemu_host, iso_pool_dir,
                                                         tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The network drops one answer (the server got the piece) and one piece (it did not): the page asks the server
    where the upload stands and goes on from there; the file ends byte-identical."""
    source = tmp_path / f"{unique_name('flaky')}.iso"
    source.write_bytes(os.urandom(SIZE))
    dropped: list[str] = []

    def flaky(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if route.request.method == "PUT" and url not in dropped:
            if url.endswith(f"offset={PIECE}"):
                dropped.append(url)
                route.fetch()  # the server stores the piece ...
                route.abort()  # ... but its answer never arrives
                return
            if url.endswith(f"offset={2 * PIECE}"):
                dropped.append(url)
                route.abort()  # the piece never leaves
                return
        route.continue_()

    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/media-library/")
    page.route("**/content/**", flaky)
    page.select_option("#upload-host", str(qemu_host.pk))
    page.set_input_files("#upload-file", str(source))
    page.click("#upload-submit")
    page.wait_for_selector(f"tr:has-text('{source.name}')", timeout=60_000)  # done: the page reloaded with it
    assert len(dropped) == 2
    iso = IsoImage.objects.get(name=source.name)
    assert iso.complete and iso.uploaded == SIZE and filecmp.cmp(source, iso.path, shallow=False)


def test_iso_sizes_read_in_the_units_of_the_forms(portal, page, staff, qemu_host, memtest_iso) -> None:  # type: ignore[no-untyped-def]
    """Finding 7 of issue 11: the ISO list said "5.9 MB" while the New VM form said "5.91 MiB" for the same file.
    Every size is written one way (binary units, hv.human), in the templates and in the pages' JavaScript."""
    from kvmweb import hypervisor as hv

    size = os.path.getsize(MEMTEST_ISO)
    words = hv.human(size)
    assert words == "5.91 MiB"
    login(page, portal, "root-admin", "admin-pass-123")
    page.goto(f"{portal.url}/media-library/")
    cell = page.locator(f"tr[data-iso-id='{memtest_iso.pk}'] td").nth(2)  # Name, Host, Size
    assert cell.inner_text() == words
    screenshot(page, "iso-library-sizes")
    # the upload's progress line (static/js/pieces.js) formats sizes the same way
    samples = [0, 1, 1023, 1024, 1536, 20 * 1024 * 1024 + 12345, size, 10**9, 3 * 1024**4, 2**60]
    assert page.evaluate("(sizes) => sizes.map(window.kvmwebPieces.human)", samples) == [hv.human(n) for n in samples]

    page.goto(f"{portal.url}/vms/new/?host={qemu_host.pk}")
    option = page.locator(f"#id_iso option[value='{memtest_iso.pk}']")
    assert f"({words})" in option.inner_text()
