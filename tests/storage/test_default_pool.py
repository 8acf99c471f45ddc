"""Newcomer defaults on libvirt's test driver: ``pool_default_ensure`` finds or makes the default pool as virt-install
does and opens it to every user once; ``manage.py bootstrap`` runs it for each host. (The run's default pool is a
prefixed name in a temporary folder: tests.conftest.default_pool_dir.)"""
from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import PermissionDeniedError
from kvmweb.storage.models import PoolAccess
from kvmweb.storage.services import pool_default_ensure, pool_set_access

pytestmark = pytest.mark.django_db
TEST_URI = "test:///default"


@pytest.fixture
def testdrv_default_pool(test_host, default_pool_dir) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The run's default pool name; removed from the test driver (which keeps state per process) afterwards."""
    yield default_pool_dir["name"]
    conn = hv.registry.connection(TEST_URI)
    try:
        pool = hv.pool_lookup(conn, default_pool_dir["name"])
    except hv.PoolNotFound:
        return
    if pool.is_active():
        pool.stop()
    pool.undefine()


def test_only_staff_set_up_the_default_pool(owner, test_host, testdrv_default_pool) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDeniedError):
        pool_default_ensure(actor=owner, host=test_host)
    assert testdrv_default_pool not in {p.name for p in hv.pool_list(hv.registry.connection(TEST_URI))}


def test_default_pool_made_started_autostarted_and_opened_once(staff, test_host, testdrv_default_pool,
                                                                default_pool_dir) -> None:  # type: ignore[no-untyped-def]
    result = pool_default_ensure(actor=staff, host=test_host)
    assert (result.pool, result.path, result.created, result.opened) == (
        testdrv_default_pool, default_pool_dir["path"], True, True)
    assert result.message == (f"Storage pool {testdrv_default_pool} ({default_pool_dir['path']}) created; "
                              "opened to every user.")
    info = next(p for p in hv.pool_list(hv.registry.connection(TEST_URI)) if p.name == testdrv_default_pool)
    assert info.active and info.autostart and info.type == "dir" and info.target_path == default_pool_dir["path"]
    access = PoolAccess.objects.get(host=test_host, pool=testdrv_default_pool)
    assert access.everyone
    assert list(AuditEntry.objects.filter(target=testdrv_default_pool).order_by("pk")
                .values_list("action", "actor__username", "ok")) == [
        ("pool.default", staff.username, True), ("pool.access", staff.username, True)]

    again = pool_default_ensure(actor=staff, host=test_host)
    assert not again.created and not again.opened and again.message.endswith(" ready.")

    # Staff close it: the next bootstrap leaves it closed (their choice), and still starts a stopped pool.
    pool_set_access(actor=staff, host=test_host, name=testdrv_default_pool, everyone=False)
    hv.pool_lookup(hv.registry.connection(TEST_URI), testdrv_default_pool).stop()
    third = pool_default_ensure(actor=staff, host=test_host)
    assert third.started and not third.opened
    assert not PoolAccess.objects.filter(host=test_host, pool=testdrv_default_pool).exists()


def test_default_pool_stays_closed_when_told(staff, test_host, testdrv_default_pool, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_DEFAULT_POOL_OPEN = False
    result = pool_default_ensure(actor=staff, host=test_host)
    assert result.created and not result.opened
    assert not PoolAccess.objects.filter(host=test_host).exists()


def test_a_pool_on_the_default_folder_is_the_default_pool(staff, test_host, testdrv_default_pool,
                                                          settings) -> None:  # type: ignore[no-untyped-def]
    """As virt-install: no pool of that name, but one on the folder (the test driver's 'default-pool' on
    /default-pool) is used, not a second pool on the same folder."""
    settings.KVMWEB_DEFAULT_POOL_DIR = "/default-pool"
    result = pool_default_ensure(actor=staff, host=test_host)
    assert (result.pool, result.created, result.opened) == ("default-pool", False, True)
    assert testdrv_default_pool not in {p.name for p in hv.pool_list(hv.registry.connection(TEST_URI))}
    assert PoolAccess.objects.get(host=test_host, pool="default-pool").everyone


def test_bootstrap_sets_up_each_host(testdrv_default_pool, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host

    settings.KVMWEB_LIBVIRT_URIS = [TEST_URI]
    monkeypatch.setenv("KVMWEB_ADMIN_USER", "kvmwebtest-admin")
    monkeypatch.setenv("KVMWEB_ADMIN_PASSWORD", "kvmwebtest-admin-pass-123")
    out = StringIO()
    call_command("bootstrap", stdout=out)
    assert f"Storage pool {testdrv_default_pool} (" in out.getvalue()
    assert "opened to every user" in out.getvalue()
    host = Host.objects.get(uri=TEST_URI)
    assert PoolAccess.objects.get(host=host, pool=testdrv_default_pool).everyone
