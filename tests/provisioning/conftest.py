from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.jobs.conftest import eager  # noqa: F401
from tests.media.conftest import memtest_iso  # noqa: F401


@pytest.fixture
def test_iso(test_host, staff):  # type: ignore[no-untyped-def]
    """An ISO library entry on the test driver's host (its files are imaginary: the test driver never reads them)."""
    from kvmweb.media.models import IsoImage

    return IsoImage.objects.create(host=test_host, name="install.iso", path="/isos/install.iso", size=1 << 20,
                                   uploaded=1 << 20, complete=True, registered=True, added_by=staff)


@pytest.fixture
def testdrv_volumes() -> Iterator[None]:
    """Remove prefixed volumes the test driver's default pool got during the test."""
    yield
    from kvmweb import hypervisor as hv
    from tests.conftest import PREFIX

    pool = hv.pool_lookup(hv.registry.connection("test:///default"), "default-pool")
    for vol in pool.volumes():
        if vol.name.startswith(PREFIX):
            pool.volume(vol.name).delete()


@pytest.fixture
def open_testdrv(test_host):  # type: ignore[no-untyped-def]
    """Staff opened the test driver's pool and network to every user."""
    from kvmweb.networks.models import AllowedNetwork
    from kvmweb.storage.models import PoolAccess

    PoolAccess.objects.create(host=test_host, pool="default-pool", everyone=True)
    AllowedNetwork.objects.create(host=test_host, name="default")
    return test_host


@pytest.fixture
def open_test_pool(qemu_host, test_pool):  # type: ignore[no-untyped-def]
    """Staff opened the real tests' storage pool to every user."""
    from kvmweb.storage.models import PoolAccess

    PoolAccess.objects.create(host=qemu_host, pool=test_pool["name"], everyone=True)
    return test_pool
