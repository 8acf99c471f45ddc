"""The image library on qemu:///system: a qcow2 made with qemu-img uploaded in pieces and checked at its last piece
(format and virtual size recorded; a backing file outside the library refused, nothing left), registered from a
host path, copied with its kernel and initrd, and kept while a volume sits on it."""
from __future__ import annotations

import filecmp
import os
import subprocess
from typing import Any

import pytest
from django.test import Client

from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from tests.conftest import unique_name, virsh

pytestmark = [pytest.mark.real, pytest.mark.django_db]
API = "/api/v1/images/"
PIECE = 256 * 1024


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pool_volumes() -> list[str]:
    from django.conf import settings

    return [line.split()[0] for line in virsh("vol-list", settings.KVMWEB_IMAGE_POOL, check=False).splitlines()
            if line.split()]


def _upload(client: Client, host: Any, source: str, name: str) -> tuple[dict[str, Any], Any]:
    """Begin an upload and send ``source`` in pieces; the begin answer and the last piece's response."""
    size = os.path.getsize(source)
    response = client.post(API, {"host": host.pk, "name": name, "size": size, "os_variant": "debian12"},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    image = response.json()
    with open(source, "rb") as src:
        offset = 0
        while piece := src.read(PIECE):
            response = client.put(f"{API}{image['id']}/content/?offset={offset}", piece,
                                  content_type="application/octet-stream")
            offset += len(piece)
            if offset < size:
                assert response.status_code == 200, response.content
    return image, response


def test_upload_in_pieces_is_checked_and_recorded(staff, qemu_host, image_pool_dir, disk_file) -> None:  # type: ignore[no-untyped-def]
    source = disk_file(size="40M")
    with open(source, "ab") as out:  # more than one piece: a qcow2 with some data in it
        out.write(os.urandom(3 * PIECE + 123))
    root = _client(staff)
    name = f"{unique_name('up')}.qcow2"
    image, response = _upload(root, qemu_host, source, name)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["complete"] and body["format"] == "qcow2" and body["virtual_size"] == 40 * 1024 * 1024
    assert body["os_variant"] == "debian12" and body["public"] and body["path"] == f"{image_pool_dir}/{name}"
    assert filecmp.cmp(source, body["path"], shallow=False)
    assert name in _pool_volumes()
    job = Job.objects.get(pk=body["job"])
    assert job.kind == "image.upload" and job.state == Job.State.SUCCEEDED
    assert root.delete(f"{API}{image['id']}/").status_code == 204
    assert name not in _pool_volumes() and not os.path.exists(body["path"])


def test_upload_with_a_backing_file_outside_the_library_is_refused(staff, qemu_host, image_pool_dir, disk_file) -> None:  # type: ignore[no-untyped-def]
    source = disk_file(backing="/etc/hostname", backing_fmt="raw")
    name = f"{unique_name('evil')}.qcow2"
    image, response = _upload(_client(staff), qemu_host, source, name)
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == (f"{image_pool_dir}/{name} sits on /etc/hostname, which is not an image of "
                                         "the library: only images of the library may be backing files.")
    assert response.json()["fields"] == {"file": ["backing file outside the library"]}
    assert not IsoImage.objects.filter(pk=image["id"]).exists()
    assert name not in _pool_volumes() and not os.path.exists(f"{image_pool_dir}/{name}")
    job = Job.objects.get(pk=image["job"])
    assert job.state == Job.State.FAILED and "not an image of the library" in job.error


def test_register_from_a_host_path(staff, owner, qemu_host, disk_file, eager,
                                   django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    path = disk_file(fmt="raw", size="8M")
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(staff).post(f"{API}register/", {"host": qemu_host.pk, "path": path, "public": False},
                                       content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    image = IsoImage.objects.get(pk=response.json()["image"]["id"])
    assert image.complete and image.registered and image.path == path and image.pool == ""
    assert (image.format, image.virtual_size, image.public) == ("raw", 8 * 1024 * 1024, False)
    assert _client(owner).get(f"{API}{image.pk}/").status_code == 404  # private: staff's own
    image.delete()


def test_copy_with_kernel_and_initrd(staff, qemu_host, image_pool_dir, disk_file, eager,
                                     django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    source = disk_file(size="12M")
    kernel, initrd = disk_file("vmlinuz", data=os.urandom(70_000)), disk_file("initrd.img", data=os.urandom(30_000))
    name = f"{unique_name('copy')}.qcow2"
    with django_capture_on_commit_callbacks(execute=True):
        response = _client(staff).post(f"{API}register/", {
            "host": qemu_host.pk, "path": source, "name": name, "mode": "copy", "kernel": kernel, "initrd": initrd,
            "cmdline": "root=/dev/vda console=ttyS0"}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["job"]["id"])
    assert job.state == Job.State.SUCCEEDED and job.progress == 100, job.error
    image = IsoImage.objects.get(pk=response.json()["image"]["id"])
    assert not image.registered and image.path == f"{image_pool_dir}/{name}"
    assert image.kernel == f"{image_pool_dir}/{name}.vmlinuz" and image.initrd == f"{image_pool_dir}/{name}.initrd"
    assert (image.format, image.virtual_size, image.cmdline) == ("qcow2", 12 * 1024 * 1024, "root=/dev/vda console=ttyS0")
    for copy, original in ((image.path, source), (image.kernel, kernel), (image.initrd, initrd)):
        assert filecmp.cmp(copy, original, shallow=False)
    assert {name, f"{name}.vmlinuz", f"{name}.initrd"} <= set(_pool_volumes())
    assert _client(staff).delete(f"{API}{image.pk}/").status_code == 204
    assert not {name, f"{name}.vmlinuz", f"{name}.initrd"} & set(_pool_volumes())
    assert os.path.exists(source) and os.path.exists(kernel)


def test_delete_refused_while_a_volume_sits_on_the_image(staff, qemu_host, test_pool, image_pool_dir,
                                                         disk_file) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.media.services import image_register

    image = image_register(actor=staff, host=qemu_host, path=disk_file(size="8M"))
    overlay = f"{unique_name('overlay')}.qcow2"  # e.g. a VM's disk made from the image
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", image.path, "-F", "qcow2",
                    os.path.join(test_pool["path"], overlay)], check=True)
    virsh("pool-refresh", test_pool["name"])
    response = _client(staff).delete(f"{API}{image.pk}/")
    assert response.status_code == 409, response.content
    assert response.json()["detail"] == (f"{image.name} is in use by the backing file of 1 volume: delete those "
                                         "first.")
    assert IsoImage.objects.filter(pk=image.pk).exists()
    virsh("vol-delete", overlay, "--pool", test_pool["name"])
    assert _client(staff).delete(f"{API}{image.pk}/").status_code == 204


def test_remote_hosts_are_checked_through_libvirt(staff, qemu_host, test_pool, disk_file, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A host whose files this machine cannot read: libvirt's probe of the volume (after a refresh of its pool)
    says what the file is; the first bytes come through a download stream."""
    from kvmweb import hypervisor as hv
    from kvmweb.core.errors import ValidationError
    from kvmweb.media import services

    monkeypatch.setattr(services, "LOCAL_URIS", ())  # qemu:///system as if it were remote
    folder, made = test_pool["path"], []

    def volume(name: str, *args: str) -> str:
        path = os.path.join(folder, f"{unique_name(name)}.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", *args, path, "24M"], check=True)
        made.append(os.path.basename(path))
        return path

    try:
        good, evil = volume("good"), volume("evil", "-u", "-b", "/etc/hostname", "-F", "raw")
        virsh("pool-refresh", test_pool["name"])  # libvirt learns of files made behind its back
        info = hv.volume_image_info(hv.registry.connection("qemu:///system"), evil)  # refreshes the pool first
        assert info == hv.ImageInfo(format="qcow2", virtual_size=24 * 1024 * 1024, backing_path="/etc/hostname",
                                    backing_format="raw")
        assert services.image_check(qemu_host, services.host_file(qemu_host, good)) == {
            "format": "qcow2", "virtual_size": 24 * 1024 * 1024}
        with pytest.raises(ValidationError, match="sits on /etc/hostname"):
            services.image_check(qemu_host, services.host_file(qemu_host, evil))
        # an upload: written into a raw volume, probed again once complete (the refresh makes libvirt read it)
        name = f"{unique_name('up')}.qcow2"
        image, response = _upload(_client(staff), qemu_host, disk_file(size="20M"), name)
        assert response.status_code == 200, response.content
        assert (response.json()["format"], response.json()["virtual_size"]) == ("qcow2", 20 * 1024 * 1024)
        assert _client(staff).delete(f"{API}{image['id']}/").status_code == 204
    finally:
        for name in made:
            virsh("vol-delete", name, "--pool", test_pool["name"], check=False)
