"""Adding a file already on a host to the ISO library, as a job (``iso.import``): register it in place, or copy it
into the portal's ISO pool. Fast tests on test:///default (local files), real ones on qemu:///system."""
from __future__ import annotations

import filecmp
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from kvmweb import hypervisor as hv

from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from tests.conftest import MEMTEST_ISO, PREFIX, unique_name, virsh

API = "/api/v1/isos/register/"
NOT_ISO = "is not an ISO 9660 image (no CD001 signature)"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, host: Any, path: str, **extra: str) -> Any:
    return client.post(API, {"host": host.pk, "path": path, **extra}, content_type="application/json")


@pytest.fixture
def local_file() -> Iterator[Callable[..., str]]:
    """Make a small local file: an "ISO" (the ISO 9660 signature where it belongs) or not."""
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}local-")
    os.chmod(folder, 0o755)

    def make(name: str = "", *, iso: bool = True) -> str:
        path = os.path.join(folder, name or f"{unique_name('f')}.iso")
        with open(path, "wb") as out:
            out.write(bytes(32769) + (b"CD001" if iso else b"XXXXX") + bytes(16 * 1024))
        return path

    yield make
    for entry in os.listdir(folder):
        os.unlink(os.path.join(folder, entry))
    os.rmdir(folder)


# ---------------------------------------------------------------------------------------------------------- fast
@pytest.mark.django_db
def test_import_refuses_bad_requests(owner, staff, test_host, local_file, iso_pool_dir) -> None:  # type: ignore[no-untyped-def]
    good = local_file()
    alice = _client(owner)
    assert _post(alice, test_host, good).status_code == 403
    assert _post(alice, test_host, "relative").status_code == 403  # who asks is checked before what is asked
    assert alice.post("/media-library/register/", {"host": test_host.pk, "path": good}).status_code == 403
    root = _client(staff)
    for dirty in ("relative/x.iso", "/a/../b.iso", "/a//b.iso", "/a/b.iso/", "/a\n.iso", ""):
        response = _post(root, test_host, dirty)
        assert response.status_code == 400, (dirty, response.content)
        assert "path" in response.json()["fields"], dirty
    response = _post(root, test_host, "/no/such/file.iso")
    assert response.status_code == 400 and response.json()["fields"]["path"] == ["no such file"]
    assert "No file /no/such/file.iso" in response.json()["detail"]
    response = _post(root, test_host, good, mode="move")
    assert response.status_code == 400 and "mode" in response.json()["fields"]
    for bad in ("x.txt", "..", "-.iso"):  # a copy is a volume in the ISO pool: upload names' rules
        response = _post(root, test_host, good, mode="copy", name=bad)
        assert response.status_code == 400 and "name" in response.json()["fields"], (bad, response.content)
    response = _post(root, test_host, local_file("no-suffix"), mode="copy")  # the file's own name must fit too
    assert response.status_code == 400 and "name" in response.json()["fields"]
    response = _post(root, test_host, good, name="bad\x01name")
    assert response.status_code == 400 and "name" in response.json()["fields"]
    assert not IsoImage.objects.exists() and not Job.objects.filter(kind="iso.import").exists()
    # duplicates: the same file, or the same name, on the same host
    assert _post(root, test_host, good, name="one.iso").status_code == 202
    assert _post(root, test_host, good, name="other.iso").status_code == 409
    assert _post(root, test_host, local_file(), name="one.iso").status_code == 409
    assert _post(root, test_host, local_file(), name="one.iso", mode="copy").status_code == 409
    assert IsoImage.objects.count() == 1 and Job.objects.filter(kind="iso.import").count() == 1


@pytest.mark.django_db
def test_register_runs_as_a_job(owner, staff, test_host, local_file, eager,
                                django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.provisioning.forms import host_choices_for  # the create wizard's install media
    from kvmweb.media.selectors import iso_list

    path = local_file()
    root = _client(staff)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        response = _post(root, test_host, path, name="Local medium")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["job"]["type"] == "iso.import" and body["job"]["state"] == "queued"
    assert body["iso"]["job"] == body["job"]["id"] and not body["iso"]["complete"]
    iso = IsoImage.objects.get(pk=body["iso"]["id"])
    # not offered as an install medium, nor shown to users, while the job has not checked it
    assert not iso_list(actor=staff, host=test_host, complete_only=True).filter(pk=iso.pk).exists()
    assert _client(owner).get(f"/api/v1/isos/{iso.pk}/").status_code == 404
    assert str(iso.pk) not in [key for key, _ in host_choices_for(test_host, staff)["iso"]]
    assert len(sent) == 1
    sent[0]()  # the commit sends the task; eager: it runs here
    job = Job.objects.get(pk=body["job"]["id"])
    assert job.state == Job.State.SUCCEEDED and job.progress == 100, job.error
    iso.refresh_from_db()
    assert iso.complete and iso.registered and iso.path == path and iso.pool == ""
    assert iso.size == iso.uploaded == os.path.getsize(path) and iso.name == "Local medium"
    assert str(iso.pk) in [key for key, _ in host_choices_for(test_host, staff)["iso"]]
    assert _client(owner).get(f"/api/v1/isos/{iso.pk}/").json()["job"] == job.pk
    # deleting a registered medium only forgets it: the portal never deletes a file it did not make
    assert root.delete(f"/api/v1/isos/{iso.pk}/").status_code == 204
    assert os.path.exists(path)


@pytest.mark.django_db
def test_a_file_that_is_no_iso_fails_the_job_and_leaves_no_row(staff, test_host, local_file, eager,
                                                              django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    path = local_file(iso=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(_client(staff), test_host, path)
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.FAILED
    assert job.error == f"{path} {NOT_ISO}."
    assert not IsoImage.objects.filter(pk=response.json()["iso"]["id"]).exists()
    assert any(line.message.startswith("Rolled back: removed") for line in job.lines.all())


@pytest.mark.django_db
def test_copy_request_and_deleting_an_unfinished_import_cancels_it(staff, test_host, local_file, iso_pool_dir,
                                                                   django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from django.conf import settings

    root = _client(staff)
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(root, test_host, local_file(), mode="copy", name="copied.iso")
    assert response.status_code == 202, response.content
    iso = response.json()["iso"]
    assert iso["path"] == f"{iso_pool_dir}/copied.iso" and iso["pool"] == settings.KVMWEB_ISO_POOL
    assert not iso["registered"] and not iso["complete"]
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.params["mode"] == "copy" and job.cancellable and job.state == Job.State.QUEUED
    # an import's row takes no upload pieces
    assert root.put(f"/api/v1/isos/{iso['id']}/content/?offset=0", b"x",
                    content_type="application/octet-stream").status_code == 409
    assert root.delete(f"/api/v1/isos/{iso['id']}/").status_code == 204
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert not IsoImage.objects.filter(pk=iso["id"]).exists()


@pytest.mark.django_db
def test_register_page_goes_to_the_job(staff, test_host, local_file) -> None:  # type: ignore[no-untyped-def]
    root = _client(staff)
    page = root.get("/media-library/").content.decode()
    assert 'name="mode"' in page and "Copy into the ISO pool" in page
    response = root.post("/media-library/register/", {"host": test_host.pk, "path": local_file(), "name": "",
                                                      "mode": "register"})
    job = Job.objects.get(kind="iso.import")
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert "importing" in root.get("/media-library/").content.decode()
    response = root.post("/media-library/register/", {"host": test_host.pk, "path": "/no/such.iso", "name": "",
                                                      "mode": "register"}, follow=True)
    assert response.redirect_chain[-1][0] == "/media-library/"
    assert "No file /no/such.iso" in response.content.decode()


# ---------------------------------------------------------------------------------------------------------- real
def _pool_volume(pool: dict[str, str], name: str, source: str, size: str | None = None) -> str:
    """A raw volume in the test pool holding ``source``'s bytes at its start (``size``: a bigger, sparse file)."""
    virsh("vol-create-as", pool["name"], name, size or str(os.path.getsize(source)), "--format", "raw")
    path = virsh("vol-path", name, "--pool", pool["name"]).strip()
    subprocess.run(["dd", f"if={source}", f"of={path}", "bs=1M", "conv=notrunc", "status=none"], check=True)
    return path


def _iso_pool_volumes() -> list[str]:
    from django.conf import settings

    return [line.split()[0] for line in virsh("vol-list", settings.KVMWEB_ISO_POOL).splitlines() if line.split()]


@pytest.mark.real
@pytest.mark.django_db
def test_register_memtest_outside_any_pool(staff, qemu_host, eager,
                                           django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(_client(staff), qemu_host, MEMTEST_ISO, name=f"{PREFIX}memtest.iso")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.SUCCEEDED and job.progress == 100, job.error
    iso = IsoImage.objects.get(pk=response.json()["iso"]["id"])
    assert iso.complete and iso.registered and iso.pool == "" and iso.path == MEMTEST_ISO
    assert iso.size == os.path.getsize(MEMTEST_ISO)
    # no pool was made for the file's folder (virt-install would have made one)
    folders = [p.target_path for p in hv.pool_list(hv.registry.connection("qemu:///system"))]
    assert os.path.dirname(MEMTEST_ISO) not in folders


@pytest.mark.real
@pytest.mark.django_db
def test_copy_from_a_pool_into_the_iso_pool(staff, qemu_host, test_pool, iso_pool_dir, eager,
                                            django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    source = _pool_volume(test_pool, f"{unique_name('src')}.iso", MEMTEST_ISO)
    root = _client(staff)
    # in place: the file in the pool is read through libvirt (a download stream) and stays where it is
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(root, qemu_host, source, name="in-place.iso")
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    in_place = IsoImage.objects.get(pk=response.json()["iso"]["id"])
    assert in_place.complete and in_place.pool == test_pool["name"] and in_place.size == os.path.getsize(source)
    # a copy: the library's own file in the ISO pool, streamed in pieces with progress
    name = f"{unique_name('copy')}.iso"
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(root, qemu_host, source, name=name, mode="copy")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.SUCCEEDED and job.progress == 100, job.error
    copy = IsoImage.objects.get(pk=response.json()["iso"]["id"])
    assert copy.complete and not copy.registered and copy.path == f"{iso_pool_dir}/{name}"
    assert copy.size == os.path.getsize(source) == os.path.getsize(copy.path)
    assert filecmp.cmp(source, copy.path, shallow=False)
    subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", source, copy.path], check=True,
                   capture_output=True)
    assert any(line.message.startswith("Copying ") for line in job.lines.all())
    assert name in _iso_pool_volumes()
    # deleting the copy deletes its file; deleting the registered one leaves the source alone
    assert root.delete(f"/api/v1/isos/{copy.pk}/").status_code == 204
    assert root.delete(f"/api/v1/isos/{in_place.pk}/").status_code == 204
    assert name not in _iso_pool_volumes() and not os.path.exists(copy.path) and os.path.exists(source)


@pytest.mark.real
@pytest.mark.django_db
def test_copying_a_disk_image_fails_and_leaves_nothing(staff, qemu_host, make_volume, iso_pool_dir, eager,
                                                      django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    source = make_volume(size="8M", fmt="qcow2")
    name = f"{unique_name('disk')}.iso"
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(_client(staff), qemu_host, source, name=name, mode="copy")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.FAILED and job.error == f"{source} {NOT_ISO}."
    assert not IsoImage.objects.filter(pk=response.json()["iso"]["id"]).exists()
    assert name not in _iso_pool_volumes() and not os.path.exists(f"{iso_pool_dir}/{name}")


def _wait_job(pk: int, done: Callable[[Job], bool], timeout: float = 120.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=pk)
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@pytest.mark.real
@pytest.mark.parametrize("stop", ["cancel the job", "delete the medium"])
def test_cancel_a_copy_midway_leaves_no_partial_file(stop, staff, qemu_host, test_pool, iso_pool_dir, transactional_db,
                                                     celery_worker_proc) -> None:  # type: ignore[no-untyped-def]
    source = _pool_volume(test_pool, f"{unique_name('big')}.iso", MEMTEST_ISO, size="512M")
    name = f"{unique_name('cancel')}.iso"
    root = _client(staff)
    response = _post(root, qemu_host, source, name=name, mode="copy")
    assert response.status_code == 202, response.content
    pk = response.json()["job"]["id"]
    job = _wait_job(pk, lambda j: j.progress >= 10 or j.finished_state)
    assert job.state == Job.State.RUNNING, (job.state, job.error)
    assert name in _iso_pool_volumes()  # the copy is being written
    if stop == "cancel the job":
        assert root.post(f"/api/v1/jobs/{pk}/cancel/").status_code == 200
    else:  # the medium goes at once; the worker stops at its next piece and deletes what it copied
        assert root.delete(f"/api/v1/isos/{response.json()['iso']['id']}/").status_code == 204
    job = _wait_job(pk, lambda j: j.finished_state)
    assert job.state == Job.State.CANCELLED, (job.state, job.error)
    assert job.progress < 100
    log = [line.message for line in job.lines.all()]
    assert f"Rolled back: deleted the partial copy {iso_pool_dir}/{name}." in log
    assert not IsoImage.objects.filter(pk=response.json()["iso"]["id"]).exists()
    assert name not in _iso_pool_volumes() and not os.path.exists(f"{iso_pool_dir}/{name}")
