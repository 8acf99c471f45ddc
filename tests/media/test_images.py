"""The image library (disk images), fast: who may do what, who sees which image, the checks a disk image must pass
(local files made with qemu-img, on libvirt's test driver host), templates keeping their image. The ISO library
beside it keeps its own rows."""
from __future__ import annotations

import os
from typing import Any

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.core.errors import ConflictError, ValidationError
from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage

API = "/api/v1/images/"
pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _image(host: Any, name: str, *, by: Any = None, public: bool = True, complete: bool = True) -> IsoImage:
    return IsoImage.objects.create(kind="image", host=host, name=name, path=f"/images/{name}", size=10,
                                   uploaded=10 if complete else 0, complete=complete, registered=True,
                                   public=public, added_by=by, format="qcow2", virtual_size=1 << 30)


def test_who_sees_which_image(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.media.selectors import image_list, image_usable, iso_list

    shared = _image(test_host, "shared.qcow2", by=staff)
    private = _image(test_host, "alice.qcow2", by=owner, public=False)
    unpublished = _image(test_host, "draft.qcow2", by=staff, public=False)
    half = _image(test_host, "half.qcow2", by=owner, complete=False)
    iso = IsoImage.objects.create(host=test_host, name="x.iso", path="/isos/x.iso", size=1, complete=True)
    assert set(image_list(actor=staff)) == {shared, private, unpublished, half}
    assert set(image_list(actor=owner)) == {shared, private, half}
    assert set(image_list(actor=owner, complete_only=True)) == {shared, private}
    assert set(image_list(actor=other_user)) == {shared}
    assert list(iso_list(actor=staff)) == [iso]  # the ISO library shows no disk image, and the other way round
    bob = _client(other_user)
    assert [row["name"] for row in bob.get(API).json()] == ["shared.qcow2"]
    for hidden in (private, unpublished, half, iso):
        assert bob.get(f"{API}{hidden.pk}/").status_code == 404
    assert bob.get(f"/api/v1/isos/{shared.pk}/").status_code == 404
    body = _client(owner).get(f"{API}{private.pk}/").json()
    assert body["format"] == "qcow2" and body["virtual_size"] == 1 << 30 and body["public"] is False
    page = bob.get("/media-library/images/").content.decode()
    assert "shared.qcow2" in page and "alice.qcow2" not in page and "draft.qcow2" not in page
    assert "shared.qcow2" not in bob.get("/media-library/").content.decode()
    # what a provisioning service asks: a complete image the person may use, on that host
    assert image_usable(actor=owner, host=test_host, pk=private.pk) == private
    for pk in (half.pk, unpublished.pk, iso.pk, "x", None):
        with pytest.raises(ValidationError) as refused:
            image_usable(actor=owner, host=test_host, pk=pk)
        assert refused.value.fields == {"image": ["no such image"]}


def test_only_staff_change_images(owner, other_user, staff, test_host, disk_file, settings) -> None:  # type: ignore[no-untyped-def]
    shared = _image(test_host, "shared.qcow2", by=staff)
    mine = _image(test_host, "mine.qcow2", by=owner, public=False)
    alice = _client(owner)
    begin = {"host": test_host.pk, "name": "x.qcow2", "size": 10}
    assert alice.post(API, begin, content_type="application/json").status_code == 403
    assert alice.post(f"{API}register/", {"host": test_host.pk, "path": disk_file()},
                      content_type="application/json").status_code == 403
    assert alice.post("/media-library/images/register/", {"host": test_host.pk, "path": disk_file()}).status_code == 403
    assert alice.delete(f"{API}{shared.pk}/").status_code == 403
    assert alice.post(f"/media-library/images/{shared.pk}/delete/").status_code == 403
    assert alice.patch(f"{API}{mine.pk}/", {"public": True}, content_type="application/json").status_code == 403
    assert alice.post(f"/media-library/images/{mine.pk}/publish/", {"public": "1"}).status_code == 403
    assert _client(other_user).patch(f"{API}{mine.pk}/", {}, content_type="application/json").status_code == 404
    # users may upload when the setting allows it: their images are their own, never published by them
    settings.KVMWEB_ISO_UPLOAD_BY_USERS = True
    response = alice.post(API, {**begin, "public": True}, content_type="application/json")
    assert response.status_code == 403 and "publish" in response.json()["detail"]
    assert not IsoImage.objects.filter(name="x.qcow2").exists()
    # staff change what an image carries, not its file
    root = _client(staff)
    response = root.patch(f"{API}{mine.pk}/", {"public": True, "os_variant": "debian12", "name": "Debian 12"},
                          content_type="application/json")
    assert response.status_code == 200, response.content
    mine.refresh_from_db()
    assert mine.public and mine.os_variant == "debian12" and mine.name == "Debian 12" and mine.path == "/images/mine.qcow2"
    for bad in ({"os_variant": "Debian 12!"}, {"cmdline": "a\nb"}, {"name": ""}):
        response = root.patch(f"{API}{mine.pk}/", bad, content_type="application/json")
        assert response.status_code == 400, (bad, response.content)
    assert root.patch(f"{API}{mine.pk}/", {"name": "shared.qcow2"}, content_type="application/json").status_code == 409
    assert root.post(f"/media-library/images/{mine.pk}/publish/", {"public": "0"}).status_code == 302
    mine.refresh_from_db()
    assert not mine.public and mine.name == "Debian 12"


def test_upload_and_import_requests_are_checked(staff, test_host, disk_file) -> None:  # type: ignore[no-untyped-def]
    root = _client(staff)
    begin = {"host": test_host.pk, "size": 10}
    for bad in ("x.iso", "x.vmdk", "", ".."):
        response = root.post(API, {**begin, "name": bad}, content_type="application/json")
        assert response.status_code == 400 and "name" in response.json()["fields"], (bad, response.content)
    response = root.post(API, {**begin, "name": "x.qcow2", "os_variant": "no way"}, content_type="application/json")
    assert response.status_code == 400 and "os_variant" in response.json()["fields"]
    good = disk_file()
    for extra, field in (({"kernel": "/no/such/vmlinuz"}, "kernel"), ({"initrd": "relative"}, "initrd"),
                         ({"mode": "copy", "name": "x.iso"}, "name"), ({"path": "/no/such.qcow2"}, "path")):
        response = root.post(f"{API}register/", {"host": test_host.pk, "path": good, **extra},
                             content_type="application/json")
        assert response.status_code == 400 and field in response.json()["fields"], (extra, response.content)
    assert not IsoImage.objects.exists() and not Job.objects.exists()


def test_register_runs_as_a_job_and_records_format_and_size(owner, staff, test_host, disk_file, eager,
                                                            django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    path = disk_file(size="20M")
    kernel, initrd = disk_file("vmlinuz", data=b"kernel"), disk_file("initrd.img", data=b"initrd")
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(staff).post(f"{API}register/", {
            "host": test_host.pk, "path": path, "name": "Tiny", "os_variant": "debian12", "kernel": kernel,
            "initrd": initrd, "cmdline": "console=ttyS0"}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.kind == "image.import" and job.state == Job.State.SUCCEEDED, job.error
    image = IsoImage.objects.get(pk=response.json()["image"]["id"])
    assert image.kind == "image" and image.complete and image.registered and image.path == path
    assert image.format == "qcow2" and image.virtual_size == 20 * 1024 * 1024 and image.size == os.path.getsize(path)
    assert (image.kernel, image.initrd, image.cmdline, image.os_variant) == (kernel, initrd, "console=ttyS0", "debian12")
    assert image.public  # staff's images are shared unless they say otherwise
    assert "Tiny" in _client(owner).get("/media-library/images/").content.decode()
    # forgetting a registered image leaves its files alone
    assert _client(staff).delete(f"{API}{image.pk}/").status_code == 204
    assert os.path.exists(path) and os.path.exists(kernel)


def test_what_a_disk_image_may_not_be(staff, test_host, disk_file, iso_pool_dir) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.media.services import image_register

    def refused(path: str) -> str:
        with pytest.raises(ValidationError) as error:
            image_register(actor=staff, host=test_host, path=path)
        return error.value.detail

    assert "sits on /etc/hostname, which is not an image of the library" in refused(
        disk_file(backing="/etc/hostname", backing_fmt="raw"))
    assert "is a vmdk image" in refused(disk_file(fmt="vmdk", size="1M"))
    assert "virtual size of 0 bytes" in refused(disk_file(size="0"))
    data = disk_file(data=b"")
    assert "an external data file" in refused(disk_file(options=f"data_file={data}"))
    iso = disk_file("install.img", data=bytes(32769) + b"CD001" + bytes(8192))
    assert "is an ISO 9660 image" in refused(iso)
    assert not IsoImage.objects.exists()
    # a qcow2 on an image of the library is fine (the way linked clones are made), in the format it was checked as
    base = image_register(actor=staff, host=test_host, path=disk_file(fmt="raw", size="4M"))
    assert (base.format, base.virtual_size) == ("raw", 4 * 1024 * 1024)
    assert "reads its backing file" in refused(disk_file(backing=base.path, backing_fmt="qcow2"))
    overlay = image_register(actor=staff, host=test_host, path=disk_file(backing=base.path, backing_fmt="raw"))
    assert overlay.format == "qcow2" and overlay.complete


def test_qcow2_header_refusals() -> None:
    header = bytearray(b"QFI\xfb" + bytes(100))
    header[4:8] = (3).to_bytes(4, "big")
    assert hv.check_qcow2_header(bytes(header)) == []
    header[72:80] = (4).to_bytes(8, "big")  # incompatible feature: external data file
    header[32:36] = (2).to_bytes(4, "big")  # LUKS
    assert hv.check_qcow2_header(bytes(header)) == ["encryption", "an external data file"]
    assert hv.check_qcow2_header(b"not a qcow2" + bytes(200)) == []


def test_delete_refused_while_a_template_uses_the_image(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.media.services import iso_delete
    from kvmweb.provisioning.models import Template

    image = _image(test_host, "base.qcow2", by=staff)
    Template.objects.create(name="Small Debian", image=image)
    response = _client(staff).delete(f"{API}{image.pk}/")
    assert response.status_code == 409
    assert response.json()["detail"] == ("base.qcow2 is used by the template Small Debian: delete or change those "
                                         "first.")
    Template.objects.create(name="Big Debian", image=image)
    with pytest.raises(ConflictError, match="templates Big Debian, Small Debian"):
        iso_delete(actor=staff, iso=image)
    assert IsoImage.objects.filter(pk=image.pk).exists()
    Template.objects.all().delete()
    assert _client(staff).delete(f"{API}{image.pk}/").status_code == 204
    assert not IsoImage.objects.filter(pk=image.pk).exists()


def test_images_page(owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    _image(test_host, "shared.qcow2", by=staff)
    page = _client(staff).get("/media-library/images/").content.decode()
    assert 'id="image-register"' in page and 'name="kernel"' in page and "Copy into the image pool" in page
    assert "Unpublish" in page and 'id="image-upload"' in page
    user_page = _client(owner).get("/media-library/images/").content.decode()
    assert "shared.qcow2" in user_page and 'id="image-register"' not in user_page and "Unpublish" not in user_page
    response = _client(staff).post("/media-library/images/register/", {"host": test_host.pk, "path": "/no/such.qcow2",
                                                                       "mode": "register"}, follow=True)
    assert response.redirect_chain[-1][0] == "/media-library/images/"
    assert "No file /no/such.qcow2" in response.content.decode()
