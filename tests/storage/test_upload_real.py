"""Real: an image uploaded in pieces into a qemu:///system pool, checked with qemu-img and virsh."""
from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from kvmweb.jobs.models import Job
from kvmweb.storage.models import VolumeOwner
from tests.conftest import unique_name, virsh
from tests.storage.conftest import qemu_img_info, upload_in_pieces, vol_url

pytestmark = pytest.mark.real
MIB = 1024 * 1024


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def _in_pool(pool: dict[str, Any], name: str) -> bool:
    return name in virsh("vol-list", pool["name"]).split() or os.path.exists(os.path.join(pool["path"], name))


@pytest.fixture
def volume_name(open_pool):  # type: ignore[no-untyped-def]
    """A prefixed volume name, deleted afterwards whatever happened."""
    names: list[str] = []

    def make(ext: str = "qcow2") -> str:
        names.append(f"{unique_name('up')}.{ext}")
        return names[-1]

    yield make
    for name in names:
        virsh("vol-delete", name, "--pool", open_pool["name"], check=False)


def test_qcow2_with_data_uploaded_in_pieces(open_pool, alice_api, owner, volume_name, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "src.qcow2"
    _run("qemu-img", "create", "-f", "qcow2", str(source), "64M")
    _run("qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 3M", "-c", "write -P 0x5c 40M 2M", str(source))
    data = source.read_bytes()
    assert len(data) > 4 * MIB  # several pieces, the last one short
    name = volume_name()
    url = vol_url(open_pool, name, "upload")
    reply = upload_in_pieces(alice_api, url, data, piece=MIB)
    assert reply.status_code == 200, reply.content
    state = reply.json()
    assert state["complete"] is True and state["offset"] == len(data)
    assert (state["volume"]["format"], state["volume"]["capacity"]) == ("qcow2", 64 * MIB)
    job = Job.objects.get(pk=state["job"]["id"])
    assert (job.state, job.progress, job.cleanup) == ("succeeded", 100, [])
    assert job.result["format"] == "qcow2" and job.result["path"] == state["volume"]["path"]
    target = os.path.join(open_pool["path"], name)
    assert qemu_img_info(target)["format"] == "qcow2"
    compare = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(source), target],
                             capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert VolumeOwner.objects.filter(pool=open_pool["name"], name=name, owner=owner).exists()
    # complete: no more pieces, and it is an ordinary volume now
    reply = alice_api.put(f"{url}?offset=0", b"x", content_type="application/octet-stream")
    assert reply.status_code == 409 and reply.json()["error"] == "upload_finished"
    assert alice_api.post(vol_url(open_pool, name, "resize"), {"size": "+1M"}, format="json").status_code == 200
    assert alice_api.delete(vol_url(open_pool, name)).status_code == 204


def test_raw_pieces_resume_at_the_offset_the_server_gives(open_pool, alice_api, volume_name) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(5 * MIB + 123)
    name = volume_name("raw")
    url = vol_url(open_pool, name, "upload")
    assert alice_api.post(url, {"size": len(data)}, format="json").status_code == 201
    assert alice_api.put(f"{url}?offset=0", data[:4 * MIB], content_type="application/octet-stream").json()[
        "offset"] == 4 * MIB
    reply = alice_api.put(f"{url}?offset=0", data[:4 * MIB], content_type="application/octet-stream")
    assert reply.status_code == 409 and reply.json()["fields"] == {"offset": [str(4 * MIB)]}  # a piece sent twice
    state = alice_api.get(url).json()
    assert (state["offset"], state["job"]["progress"]) == (4 * MIB, 4 * MIB * 100 // len(data))
    reply = alice_api.put(f"{url}?offset={state['offset']}", data[state["offset"]:],
                          content_type="application/octet-stream")
    assert reply.status_code == 200 and reply.json()["complete"], reply.content
    assert (reply.json()["volume"]["format"], reply.json()["volume"]["capacity"]) == ("raw", len(data))
    assert Path(open_pool["path"], name).read_bytes() == data
    got = alice_api.get(vol_url(open_pool, name, "download"))
    assert got.status_code == 200 and b"".join(got.streaming_content) == data


def test_image_with_a_backing_file_is_refused_and_removed(open_pool, alice_api, volume_name, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sneaky = tmp_path / "sneaky.qcow2"
    _run("qemu-img", "create", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", str(sneaky))
    name = volume_name()
    reply = upload_in_pieces(alice_api, vol_url(open_pool, name, "upload"), sneaky.read_bytes(), piece=64 * 1024)
    assert reply.status_code == 400, reply.content
    assert "backing file (/etc/hostname)" in reply.json()["detail"]
    assert not _in_pool(open_pool, name)
    assert not VolumeOwner.objects.filter(pool=open_pool["name"], name=name).exists()
    job = Job.objects.get(kind="storage.upload", target=f"{open_pool['name']}/{name}")
    assert job.state == "failed" and "backing file" in job.error and job.cleanup == []


def test_abandoned_upload_is_undone_by_the_sweep(open_pool, alice_api, volume_name) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.jobs.tasks import sweep_stale_web

    name = volume_name("raw")
    url = vol_url(open_pool, name, "upload")
    state = alice_api.post(url, {"size": 3 * MIB}, format="json").json()
    assert alice_api.put(f"{url}?offset=0", os.urandom(MIB), content_type="application/octet-stream").status_code == 200
    assert _in_pool(open_pool, name)
    Job.objects.filter(pk=state["job"]["id"]).update(heartbeat=timezone.now() - timedelta(hours=2))
    assert state["job"]["id"] in sweep_stale_web.apply().get()
    job = Job.objects.get(pk=state["job"]["id"])
    assert job.state == "failed" and "abandoned" in job.error
    assert not _in_pool(open_pool, name)
    assert not VolumeOwner.objects.filter(pool=open_pool["name"], name=name).exists()
    reply = alice_api.put(f"{url}?offset={MIB}", os.urandom(MIB), content_type="application/octet-stream")
    assert reply.status_code == 409 and "failed" in reply.json()["detail"]


def test_cancel_mid_upload_removes_the_file(open_pool, alice_api, volume_name) -> None:  # type: ignore[no-untyped-def]
    name = volume_name("raw")
    url = vol_url(open_pool, name, "upload")
    assert alice_api.post(url, {"size": 2 * MIB}, format="json").status_code == 201
    assert alice_api.put(f"{url}?offset=0", os.urandom(MIB), content_type="application/octet-stream").status_code == 200
    assert alice_api.delete(url).status_code == 204
    assert not _in_pool(open_pool, name)
