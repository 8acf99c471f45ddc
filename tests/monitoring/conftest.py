"""Fixtures of the monitoring tests: the stats store on an in-memory Redis stand-in (fast tests), or on the real
Redis under this run's own key prefix (real tests), emptied afterwards."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .fake_redis import FakeRedis


@pytest.fixture
def stats_redis(monkeypatch: pytest.MonkeyPatch) -> FakeRedis:
    """Every read and write of ``kvmweb.monitoring.store`` goes to a fresh in-memory Redis."""
    from kvmweb.monitoring import store

    fake = FakeRedis()
    monkeypatch.setattr(store, "client", lambda: fake)
    return fake


@pytest.fixture
def real_stats_redis() -> Iterator[Any]:
    """The real Redis (settings REDIS_URL) with this run's stats prefix; every key under it is deleted afterwards."""
    from kvmweb.monitoring import store

    r = store.client()
    r.ping()
    yield r
    keys = list(r.scan_iter(match=f"{store.prefix()}*"))
    if keys:
        r.delete(*keys)
