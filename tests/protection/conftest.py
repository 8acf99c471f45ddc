"""Fixtures of the protection tests: job tasks run in this process (Celery eager), this run's own backup pool,
the test pool opened to alice, API clients."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from tests.conftest import _run_pool


@pytest.fixture(scope="session", autouse=True)
def backup_pool_dir(no_leftovers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The portal's backup pool, for this run and the servers it starts (tests.live.server_env): a prefixed pool in
    a temporary folder, never the host's real one; removed at the end (before the leftover check)."""
    yield from _run_pool("backups", "BACKUP", "backups")


@pytest.fixture
def open_pool(qemu_host, test_pool, owner):  # type: ignore[no-untyped-def]
    """The session's test pool, opened to alice on the qemu host."""
    from kvmweb.storage.models import PoolAccess

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


@pytest.fixture
def eager() -> Iterator[None]:
    """Job tasks run in this process when sent (wrap the sending code in django_capture_on_commit_callbacks)."""
    from kvmweb.celery import app

    old = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = old
