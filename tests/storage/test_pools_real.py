"""Real: storage pools (staff) through the API and the pages, checked with virsh."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.conftest import PREFIX, unique_name, virsh
from tests.storage.conftest import upload_in_pieces, vol_url

pytestmark = pytest.mark.real


@pytest.fixture
def pool_dir():  # type: ignore[no-untyped-def]
    parent = tempfile.mkdtemp(prefix=f"{PREFIX}pools-")
    name = unique_name("pool")
    yield name, os.path.join(parent, "images")
    virsh("pool-destroy", name, check=False)
    for line in virsh("vol-list", name, check=False).splitlines():
        if line.split():
            virsh("vol-delete", line.split()[0], "--pool", name, check=False)
    virsh("pool-undefine", name, check=False)
    shutil.rmtree(parent, ignore_errors=True)


def test_pool_lifecycle(qemu_host, staff_api, alice_api, owner, pool_dir) -> None:  # type: ignore[no-untyped-def]
    name, path = pool_dir
    base = f"/api/v1/hosts/{qemu_host.pk}/pools/"
    assert alice_api.post(base, {"name": name, "path": path}, format="json").status_code == 403
    reply = staff_api.post(base, {"name": name, "path": path, "autostart": False}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["state"] == "running" and os.path.isdir(path)
    details = virsh("pool-list", "--all", "--details")
    assert any(line.split()[:2] == [name, "running"] for line in details.splitlines() if line.split())
    assert staff_api.post(base, {"name": name, "path": path}, format="json").status_code == 409
    for bad in ["../x", "relative/x", "/a/../b"]:
        assert staff_api.post(base, {"name": unique_name("p"), "path": bad}, format="json").status_code == 400

    listed = {p["name"]: p for p in staff_api.get(base).json()}
    assert listed[name]["capacity"] > 0 and listed[name]["available"] > 0 and listed[name]["open_to"] is None
    assert name not in {p["name"] for p in alice_api.get(base).json()}  # not open to alice yet

    pool = f"{base}{name}/"
    assert staff_api.post(pool + "autostart/", {"enabled": True}, format="json").status_code == 200
    assert "yes" in virsh("pool-info", name).split("Autostart:")[1].split("\n")[0]
    assert staff_api.post(pool + "access/", {"users": ["alice"]}, format="json").status_code == 200
    assert name in {p["name"] for p in alice_api.get(base).json()}
    assert alice_api.post(pool + "stop/").status_code == 403  # users use pools, staff manage them

    vol = f"{unique_name('v')}.qcow2"
    assert alice_api.post(vol_url({"host": qemu_host, "name": name}), {"name": vol, "size": "1M"},
                          format="json").status_code == 201
    reply = staff_api.delete(pool)
    assert reply.status_code == 409 and vol in reply.json()["detail"]  # holds a volume: refused
    assert staff_api.post(pool + "stop/").status_code == 200
    assert "inactive" in virsh("pool-info", name)
    assert staff_api.post(pool + "refresh/").status_code == 409
    assert staff_api.post(pool + "start/").status_code == 200
    assert staff_api.post(pool + "refresh/").status_code == 200
    reply = staff_api.delete(pool + "?delete_volumes=true")
    assert reply.status_code == 200, reply.content
    assert reply.json()["deleted_volumes"] == [vol] and reply.json()["folder_removed"] is True
    assert name not in virsh("pool-list", "--all", "--name").split()
    assert not os.path.exists(path)


def test_pool_pages(qemu_host, client, staff, owner, open_pool, pool_dir) -> None:  # type: ignore[no-untyped-def]
    name, path = pool_dir
    client.force_login(staff)
    page = client.get("/storage/")
    assert page.status_code == 200 and open_pool["name"] in page.content.decode()
    reply = client.post(f"/storage/hosts/{qemu_host.pk}/pools/define/", {"name": name, "path": path,
                                                                         "autostart": ""}, follow=True)
    assert f"Pool {name} is defined" in reply.content.decode()
    detail = client.get(f"/storage/hosts/{qemu_host.pk}/pools/{name}/")
    assert detail.status_code == 200 and path in detail.content.decode()
    reply = client.post(f"/storage/hosts/{qemu_host.pk}/pools/{name}/delete/", follow=True)
    assert "deleted" in reply.content.decode()
    client.force_login(owner)
    page = client.get("/storage/").content.decode()
    assert open_pool["name"] in page and "Define a directory pool" not in page
    assert client.get(f"/storage/hosts/{qemu_host.pk}/pools/default-nonexistent/").status_code == 404


def test_upload_and_download_stream(open_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('up')}.raw"
    data = os.urandom(3 * 1024 * 1024 + 123)
    url = vol_url(open_pool, name, "upload")
    reply = upload_in_pieces(alice_api, url, data)
    assert reply.status_code == 200, reply.content
    assert reply.json()["volume"]["format"] == "raw" and reply.json()["volume"]["capacity"] == len(data)
    with open(os.path.join(open_pool["path"], name), "rb") as f:
        assert f.read() == data
    assert alice_api.post(url, {"size": len(data)}, format="json").status_code == 409  # the name is taken
    got = alice_api.get(vol_url(open_pool, name, "download"))
    assert got.status_code == 200 and int(got["Content-Length"]) == len(data)
    assert b"".join(got.streaming_content) == data
    assert alice_api.delete(vol_url(open_pool, name)).status_code == 204
