"""Fixtures of the storage tests: the session's test pool opened to alice, API clients, qemu-img as oracle."""
from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from rest_framework.test import APIClient

from kvmweb.storage.models import PoolAccess


def qemu_img_info(path: str, *extra: str) -> Any:
    """``qemu-img info --output=json`` (``-U``: the image may be open by a running guest)."""
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", *extra, path], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return json.loads(out)


@pytest.fixture
def open_pool(qemu_host, test_pool, owner):  # type: ignore[no-untyped-def]
    """The session's test pool, opened to alice on the qemu host."""
    access = PoolAccess.objects.create(host=qemu_host, pool=test_pool["name"])
    access.users.add(owner)
    return {"host": qemu_host, **test_pool}


@pytest.fixture
def alice_api(owner) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(owner)
    return client


@pytest.fixture
def bob_api(other_user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(other_user)
    return client


@pytest.fixture
def staff_api(staff) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_login(staff)
    return client


def vol_url(pool: dict[str, Any], name: str = "", action: str = "") -> str:
    base = f"/api/v1/hosts/{pool['host'].pk}/pools/{pool['name']}/volumes/"
    if name:
        base += f"{name}/"
    if action:
        base += f"{action}/"
    return base


def upload_in_pieces(client: APIClient, url: str, data: bytes, piece: int = 1024 * 1024) -> Any:
    """Upload ``data`` the way the browser does: POST its size, then PUT each piece in order at ``?offset=``.
    Returns the last reply (the completed upload, or the first refusal)."""
    reply = client.post(url, {"size": len(data)}, format="json")
    if reply.status_code != 201:
        return reply
    state = reply.json()
    while not state["complete"]:
        offset = state["offset"]
        reply = client.put(f"{url}?offset={offset}", data[offset:offset + piece],
                           content_type="application/octet-stream")
        if reply.status_code != 200:
            return reply
        state = reply.json()
    return reply
