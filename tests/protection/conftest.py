"""Fixtures of the protection tests: this run's own backup pool, API clients."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from tests.conftest import PREFIX, libvirt_available, remove_pool


@pytest.fixture(scope="session", autouse=True)
def backup_pool_dir(no_leftovers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The portal's backup pool, for this run and the servers it starts (tests.live.server_env): a prefixed pool in
    a temporary folder, never the host's real one; removed at the end (before the leftover check)."""
    from django.conf import settings

    base = tempfile.mkdtemp(prefix=f"{PREFIX}backups-")
    os.chmod(base, 0o755)
    pool = f"{PREFIX}backups-{os.getpid()}"
    old = settings.KVMWEB_BACKUP_POOL, settings.KVMWEB_BACKUP_DIR
    settings.KVMWEB_BACKUP_POOL, settings.KVMWEB_BACKUP_DIR = pool, f"{base}/backups"
    yield settings.KVMWEB_BACKUP_DIR
    settings.KVMWEB_BACKUP_POOL, settings.KVMWEB_BACKUP_DIR = old
    if libvirt_available():
        remove_pool(pool)
    shutil.rmtree(base, ignore_errors=True)


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
