"""Fast: an image upload in pieces (POST the size, PUT each piece at ?offset=N), checked against libvirt's test
driver up to the point where bytes would be written (the test driver cannot take a volume upload stream): the
piece limit (413), Content-Length and offset checks, who may upload, cancel, and the sweep of abandoned uploads."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.core.api import MAX_PIECE, byte_offset, exception_handler, piece_length
from kvmweb.core.errors import PayloadTooLargeError, ValidationError, error_reply
from kvmweb.jobs.models import Job
from kvmweb.jobs.services import jobs_fail_stale_web
from kvmweb.storage.models import PoolAccess, VolumeOwner
from kvmweb.storage.services import UPLOAD, upload_job
from tests.conftest import PREFIX, unique_name
from tests.storage.conftest import vol_url

POOL = "default-pool"  # the test driver's own pool (100 GiB, in memory)
MIB = 1024 * 1024


def _request(length: str | None) -> Any:
    extra = {} if length is None else {"CONTENT_LENGTH": length}
    request = RequestFactory().put("/x/", **extra)
    if length is None:
        request.META.pop("CONTENT_LENGTH", None)
    return request


@pytest.mark.parametrize("raw", [None, "", "0", "-5", "abc", "1e3", "\u00b2", " ", "9" * 30])
def test_piece_length_refuses_unusable_lengths(raw: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        piece_length(_request(raw))
    assert caught.value.status == 400 and "Content-Length" in caught.value.detail


def test_piece_length_limit() -> None:
    assert piece_length(_request("1")) == 1
    assert piece_length(_request(str(MAX_PIECE))) == MAX_PIECE == 16 * MIB
    with pytest.raises(PayloadTooLargeError) as caught:
        piece_length(_request(str(MAX_PIECE + 1)))
    reply = error_reply(caught.value)
    assert reply is not None and (reply.status, reply.code) == (413, "too_large")
    assert reply.detail.startswith("Send at most 16 MiB per request; larger files go in pieces")
    response = exception_handler(caught.value, {})
    assert response is not None and response.status_code == 413 and response.data["error"] == "too_large"
    with pytest.raises(PayloadTooLargeError):
        piece_length(_request("2048"), limit=1024)


@pytest.mark.parametrize("raw", [None, "", "-1", "1.5", "x", "\u00b9"])
def test_byte_offset_refuses(raw: str | None) -> None:
    with pytest.raises(ValidationError):
        byte_offset(raw)


def test_byte_offset() -> None:
    assert byte_offset("0") == 0 and byte_offset("4194304") == 4194304


# ------------------------------------------------------------------------------------------------ the API
@pytest.fixture
def drv_pool(test_host, owner) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The test driver's pool, opened to alice; prefixed volumes made in it are removed afterwards."""
    access = PoolAccess.objects.create(host=test_host, pool=POOL)
    access.users.add(owner)
    yield {"host": test_host, "name": POOL}
    pool = hv.pool_lookup(hv.registry.connection(test_host.uri), POOL)
    for info in pool.volumes():
        if info.name.startswith(PREFIX):
            pool.volume(info.name).delete()


def _volume_names(pool: dict[str, Any]) -> set[str]:
    return {v.name for v in hv.pool_lookup(hv.registry.connection(pool["host"].uri), pool["name"]).volumes()}


def _begin(client: APIClient, pool: dict[str, Any], size: int = 10 * MIB) -> tuple[str, str, dict[str, Any]]:
    name = f"{unique_name('up')}.qcow2"
    url = vol_url(pool, name, "upload")
    reply = client.post(url, {"size": size}, format="json")
    assert reply.status_code == 201, reply.content
    return name, url, reply.json()


def _put(client: APIClient, url: str, body: bytes, **extra: Any) -> Any:
    return client.put(url, body, content_type="application/octet-stream", **extra)


def test_begin_makes_the_volume_and_a_running_job(drv_pool, alice_api, owner) -> None:  # type: ignore[no-untyped-def]
    name, url, state = _begin(alice_api, drv_pool)
    assert (state["name"], state["pool"], state["size"], state["offset"]) == (name, POOL, 10 * MIB, 0)
    assert state["complete"] is False and state["volume"] is None and state["max_piece"] == MAX_PIECE
    job = Job.objects.get(pk=state["job"]["id"])
    assert (job.kind, job.state, job.worker, job.actor) == (UPLOAD, "running", "web", owner)
    assert job.target == f"{POOL}/{name}" and job.cleanup[0]["step"] == "storage.delete_volume"
    volume = hv.pool_lookup(hv.registry.connection(drv_pool["host"].uri), POOL).volume(name)
    assert volume.info().capacity == 10 * MIB
    assert VolumeOwner.objects.filter(pool=POOL, name=name, owner=owner).exists()
    assert alice_api.get(url).json()["offset"] == 0  # where to resume

    reply = alice_api.post(url, {"size": MIB}, format="json")
    assert reply.status_code == 409 and reply.json()["error"] == "name_taken"
    # the volume is not usable before its last piece is in
    reply = alice_api.post(vol_url(drv_pool, name, "resize"), {"size": "+1M"}, format="json")
    assert reply.status_code == 409 and "still being uploaded" in reply.json()["detail"]


@pytest.mark.parametrize("size", [0, -1, "abc", None, True])
def test_begin_refuses_bad_sizes(drv_pool, alice_api, size) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('up')}.raw"
    reply = alice_api.post(vol_url(drv_pool, name, "upload"), {"size": size}, format="json")
    assert reply.status_code == 400 and reply.json()["error"] == "invalid", reply.content
    assert name not in _volume_names(drv_pool)


def test_begin_checks_the_pools_room_and_the_name(drv_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('big')}.raw"
    reply = alice_api.post(vol_url(drv_pool, name, "upload"), {"size": 200 * 1024**3}, format="json")
    assert reply.status_code == 400 and reply.json()["error"] == "no_space"
    assert reply.json()["detail"].startswith(f"An upload of 200 GiB needs 200 GiB but pool {POOL} has only")
    assert name not in _volume_names(drv_pool) and not Job.objects.filter(kind=UPLOAD).exists()
    reply = alice_api.post(vol_url(drv_pool, "bad name", "upload"), {"size": MIB}, format="json")
    assert reply.status_code == 400 and not Job.objects.filter(kind=UPLOAD).exists()


def test_piece_checks_before_reading_anything(drv_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    name, url, _state = _begin(alice_api, drv_pool, size=MIB)
    reply = _put(alice_api, f"{url}?offset=0", b"x" * 10, CONTENT_LENGTH=str(MAX_PIECE + 1))
    assert reply.status_code == 413 and reply.json()["error"] == "too_large"
    assert "Send at most 16 MiB per request" in reply.json()["detail"]
    for length in ("", "0", "ten"):
        reply = _put(alice_api, f"{url}?offset=0", b"x" * 10, CONTENT_LENGTH=length)
        assert reply.status_code == 400 and "Content-Length" in reply.json()["detail"], length
    for query in ("", "?offset=", "?offset=-1", "?offset=abc"):
        reply = _put(alice_api, url + query, b"x" * 10)
        assert reply.status_code == 400 and "offset" in reply.json()["fields"], query
    reply = _put(alice_api, f"{url}?offset=4096", b"x" * 10)
    assert reply.status_code == 409 and reply.json()["error"] == "wrong_offset"
    assert reply.json()["detail"] == "Expected the piece at offset 0, got 4096." and reply.json()["fields"] == {
        "offset": ["0"]}
    reply = _put(alice_api, f"{url}?offset=0", b"x" * (MIB + 1))
    assert reply.status_code == 400 and "beyond the announced size" in reply.json()["detail"]
    job = upload_job(drv_pool["host"], POOL, name)
    assert job is not None and job.state == "running" and job.result == {"received": 0}


def test_no_upload_to_continue(drv_pool, alice_api, staff_api) -> None:  # type: ignore[no-untyped-def]
    name = f"{unique_name('none')}.raw"
    url = vol_url(drv_pool, name, "upload")
    for reply in (_put(alice_api, f"{url}?offset=0", b"x"), alice_api.get(url), alice_api.delete(url)):
        assert reply.status_code == 404 and "No upload of" in reply.json()["detail"]
    # an upload is never started by a bare PUT: the volume must be announced first
    assert name not in _volume_names(drv_pool)


def test_other_users_and_anonymous(drv_pool, alice_api, bob_api, staff_api, other_user, client) -> None:  # type: ignore[no-untyped-def]
    name, url, state = _begin(alice_api, drv_pool)
    # bob: the pool is not open to him
    assert bob_api.post(vol_url(drv_pool, f"{unique_name('b')}.raw", "upload"), {"size": MIB},
                        format="json").status_code == 404
    for reply in (_put(bob_api, f"{url}?offset=0", b"x"), bob_api.get(url), bob_api.delete(url)):
        assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    # open to him too: still not his upload
    PoolAccess.objects.filter(pool=POOL).update(everyone=True)
    for reply in (_put(bob_api, f"{url}?offset=0", b"x"), bob_api.get(url), bob_api.delete(url)):
        assert reply.status_code == 404 and reply.json()["error"] == "not_found"
    assert upload_job(drv_pool["host"], POOL, name).state == "running"  # type: ignore[union-attr]
    assert staff_api.get(url).json()["job"]["id"] == state["job"]["id"]  # staff see every upload
    for reply in (client.post(url, {"size": 1}), client.put(f"{url}?offset=0", b"x"), client.get(url)):
        assert reply.status_code in (401, 403)


def test_closed_pool_and_staff(test_host, alice_api, staff_api) -> None:  # type: ignore[no-untyped-def]
    pool = {"host": test_host, "name": POOL}
    name = f"{unique_name('s')}.raw"
    assert alice_api.post(vol_url(pool, name, "upload"), {"size": MIB}, format="json").status_code == 404
    reply = staff_api.post(vol_url(pool, name, "upload"), {"size": MIB}, format="json")
    try:
        assert reply.status_code == 201, reply.content
        assert staff_api.delete(vol_url(pool, name, "upload")).status_code == 204
        assert name not in _volume_names(pool)
    finally:
        if name in _volume_names(pool):
            hv.pool_lookup(hv.registry.connection(test_host.uri), POOL).volume(name).delete()


def test_cancel_deletes_the_unfinished_volume(drv_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    name, url, state = _begin(alice_api, drv_pool)
    assert alice_api.delete(url).status_code == 204
    job = Job.objects.get(pk=state["job"]["id"])
    assert job.state == "cancelled" and job.cleanup == []
    assert any("deleted the unfinished upload" in line.message for line in job.lines.all())
    assert name not in _volume_names(drv_pool)
    assert not VolumeOwner.objects.filter(pool=POOL, name=name).exists()
    reply = _put(alice_api, f"{url}?offset=0", b"x")
    assert reply.status_code == 409 and reply.json()["error"] == "upload_finished"
    assert "cancelled" in reply.json()["detail"]
    # the name is free again
    assert alice_api.post(url, {"size": MIB}, format="json").status_code == 201


def test_deleting_the_unfinished_volume_ends_its_upload(drv_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    name, url, state = _begin(alice_api, drv_pool)
    assert alice_api.delete(vol_url(drv_pool, name)).status_code == 204
    assert Job.objects.get(pk=state["job"]["id"]).state == "cancelled"
    assert _put(alice_api, f"{url}?offset=0", b"x").status_code == 409


def test_the_sweep_undoes_an_abandoned_upload(drv_pool, alice_api) -> None:  # type: ignore[no-untyped-def]
    quiet, _url, quiet_state = _begin(alice_api, drv_pool)
    busy, _url, busy_state = _begin(alice_api, drv_pool)
    Job.objects.filter(pk=quiet_state["job"]["id"]).update(heartbeat=timezone.now() - timedelta(hours=2))
    assert jobs_fail_stale_web(older_than_seconds=3600) == [quiet_state["job"]["id"]]
    job = Job.objects.get(pk=quiet_state["job"]["id"])
    assert job.state == "failed" and "abandoned" in job.error
    assert quiet not in _volume_names(drv_pool) and busy in _volume_names(drv_pool)
    assert not VolumeOwner.objects.filter(pool=POOL, name=quiet).exists()
    assert Job.objects.get(pk=busy_state["job"]["id"]).state == "running"
