"""The ISO library: who may do what (fast), and a real streamed upload in pieces that a guest then boots from."""
from __future__ import annotations

import filecmp
import os

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from tests.conftest import MEMTEST_ISO, unique_name, virsh
from tests.provisioning.helpers import wait_screen

PIECE = 1024 * 1024


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_permissions_and_validation(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    anon = Client()
    assert anon.get("/api/v1/isos/").status_code in (401, 403)
    assert anon.get("/media-library/").status_code == 302
    alice = _client(owner)
    assert alice.get("/media-library/").status_code == 200
    # Users may not upload unless the setting allows it; staff may.
    body = {"host": test_host.pk, "name": "x.iso", "size": 10}
    assert alice.post("/api/v1/isos/", body, content_type="application/json").status_code == 403
    assert alice.post("/api/v1/isos/register/", {"host": test_host.pk, "path": "/etc/hostname"},
                      content_type="application/json").status_code == 403
    root = _client(staff)
    for bad in ({"name": "x.txt"}, {"name": ""}, {"size": 0}, {"size": -1}):
        response = root.post("/api/v1/isos/", {**body, **bad}, content_type="application/json")
        assert response.status_code == 400, (bad, response.content)
    response = root.post("/api/v1/isos/register/", {"host": test_host.pk, "path": "relative/x.iso"},
                         content_type="application/json")
    assert response.status_code == 400 and "path" in response.json()["fields"]
    response = root.post("/api/v1/isos/register/", {"host": test_host.pk, "path": "/no/such/file.iso"},
                         content_type="application/json")
    assert response.status_code == 400
    # An unfinished upload of someone else is invisible.
    iso = IsoImage.objects.create(host=test_host, name="half.iso", path="/x/half.iso", size=10, added_by=staff)
    assert alice.get(f"/api/v1/isos/{iso.pk}/").status_code == 404
    assert alice.put(f"/api/v1/isos/{iso.pk}/content/?offset=0", b"x", content_type="application/octet-stream"
                     ).status_code == 404
    assert alice.delete(f"/api/v1/isos/{iso.pk}/").status_code == 404
    assert alice.post(f"/media-library/{iso.pk}/delete/").status_code == 404
    # A piece needs a length and an offset, and at most 16 MiB (the web process holds a request body whole).
    url = f"/api/v1/isos/{iso.pk}/content/"
    response = root.put(url + "?offset=0", b"", content_type="application/octet-stream")
    assert response.status_code == 400 and response.json()["error"]
    response = root.put(url + "?offset=x", b"abc", content_type="application/octet-stream")
    assert response.status_code == 400 and "offset" in response.json()["fields"]
    response = root.generic("PUT", url + "?offset=0", b"abc", content_type="application/octet-stream",
                            CONTENT_LENGTH=str(17 * 1024 * 1024))
    assert response.status_code == 413 and "16 MiB" in response.json()["detail"]
    assert IsoImage.objects.get(pk=iso.pk).uploaded == 0


@pytest.mark.real
@pytest.mark.django_db
def test_upload_in_pieces_then_boot_from_it(qemu_host, staff, owner, iso_pool_dir, test_pool, eager,
                                            django_capture_on_commit_callbacks, cleanup_domains) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.provisioning.services import vm_create

    root = _client(staff)
    size = os.path.getsize(MEMTEST_ISO)
    response = root.post("/api/v1/isos/", {"host": qemu_host.pk, "name": "memtest86+x64.iso", "size": size},
                         content_type="application/json")
    assert response.status_code == 201, response.content
    iso = response.json()
    assert iso["name"] == "memtest86_x64.iso" and not iso["complete"]
    url = f"/api/v1/isos/{iso['id']}/content/"
    with open(MEMTEST_ISO, "rb") as src:
        offset = 0
        while piece := src.read(PIECE):
            if offset == PIECE:  # a piece out of order is refused and changes nothing
                wrong = root.put(f"{url}?offset={offset + PIECE}", piece, content_type="application/octet-stream")
                assert wrong.status_code == 409
            response = root.put(f"{url}?offset={offset}", piece, content_type="application/octet-stream")
            assert response.status_code == 200, response.content
            offset += len(piece)
    assert response.json()["complete"] and response.json()["uploaded"] == size
    upload = Job.objects.get(pk=iso["job"])
    assert upload.kind == "iso.upload" and upload.state == Job.State.SUCCEEDED and upload.progress == 100
    path = response.json()["path"]
    assert path.startswith(iso_pool_dir) and filecmp.cmp(path, MEMTEST_ISO, shallow=False)
    assert "memtest86_x64.iso" in virsh("vol-list", response.json()["pool"])

    qemu_host.domain_type = "qemu"
    qemu_host.save()
    name = unique_name("iso")
    cleanup_domains.append(name)
    with django_capture_on_commit_callbacks(execute=True):
        created = vm_create(actor=owner, host=qemu_host, name=name, memory="96", iso=iso["id"], start=True)
    vm, job = created.vm, created.job
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    dom = hv.domain_lookup(hv.registry.connection("qemu:///system"), str(vm.uuid))
    wait_screen(dom)
    # In use: delete refused; after the VM is gone: deleted with its volume.
    response = root.delete(f"/api/v1/isos/{iso['id']}/")
    assert response.status_code == 409 and name in response.json()["detail"]
    virsh("destroy", name)
    virsh("undefine", name)
    assert root.delete(f"/api/v1/isos/{iso['id']}/").status_code == 204
    assert not os.path.exists(path)


@pytest.mark.django_db
def test_page_permissions_for_shared_media(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    iso = IsoImage.objects.create(host=test_host, name="shared.iso", path="/x/shared.iso", size=10, uploaded=10,
                                  complete=True, registered=True, added_by=staff)
    bob = _client(other_user)
    assert "shared.iso" in bob.get("/media-library/").content.decode()  # everyone sees complete media
    assert bob.post(f"/media-library/{iso.pk}/delete/").status_code == 403
    assert bob.delete(f"/api/v1/isos/{iso.pk}/").status_code == 403
    assert bob.post("/media-library/register/", {"host": test_host.pk, "path": "/etc/hostname"}).status_code == 403
    assert Client().post(f"/media-library/{iso.pk}/delete/").status_code == 302
    root = _client(staff)
    assert root.post(f"/media-library/{iso.pk}/delete/").status_code == 302
    assert not IsoImage.objects.filter(pk=iso.pk).exists()


@pytest.mark.real
@pytest.mark.django_db
def test_cancelled_or_abandoned_upload_leaves_nothing(qemu_host, staff, iso_pool_dir) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.jobs.services import jobs_fail_stale_web

    root = _client(staff)
    paths = []
    for name in ("cancel-me.iso", "abandon-me.iso"):
        response = root.post("/api/v1/isos/", {"host": qemu_host.pk, "name": name, "size": 3 * PIECE},
                             content_type="application/json")
        assert response.status_code == 201
        iso = response.json()
        assert root.put(f"/api/v1/isos/{iso['id']}/content/?offset=0", b"x" * PIECE,
                        content_type="application/octet-stream").status_code == 200
        paths.append((iso, response.json()["path"]))
    (cancel, cancel_path), (abandon, abandon_path) = paths
    # Cancel from the Jobs API: the unfinished file is removed at once; a late piece finds nothing.
    assert root.post(f"/api/v1/jobs/{cancel['job']}/cancel/").status_code == 200
    assert Job.objects.get(pk=cancel["job"]).state == Job.State.CANCELLED
    response = root.put(f"/api/v1/isos/{cancel['id']}/content/?offset={PIECE}", b"x" * PIECE,
                        content_type="application/octet-stream")
    assert response.status_code == 404
    # Abandoned: the recovery fails it once it has been quiet long enough.
    Job.objects.filter(pk=abandon["job"]).update(heartbeat=Job.objects.get(pk=abandon["job"]).heartbeat.replace(year=2000))
    assert jobs_fail_stale_web(older_than_seconds=60) == [abandon["job"]]
    for iso, path in ((cancel, cancel_path), (abandon, abandon_path)):
        assert not IsoImage.objects.filter(pk=iso["id"]).exists()
        assert not os.path.exists(path)
