"""Fixtures for network tests: every network a test makes carries PREFIX and is removed afterwards."""
from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Iterator

import pytest

from kvmweb import hypervisor as hv
from tests.conftest import PREFIX, SYSTEM

TESTDRV = "test:///default"


def net_name(tag: str = "net") -> str:
    return f"{PREFIX}{tag}-{uuid_mod.uuid4().hex[:8]}"


def short_bridge() -> str:
    """A bridge name of our own, 11 characters (the kernel takes at most 15)."""
    return "kvt" + uuid_mod.uuid4().hex[:8]


def remove_prefixed_networks(uri: str) -> None:
    conn = hv.registry.connection(uri)
    for row in hv.network_list(conn):
        if row.name.startswith(PREFIX):
            net = hv.network_lookup(conn, row.name)
            if row.active:
                net.stop()
            if row.persistent:
                net.undefine()


@pytest.fixture
def testdrv_networks() -> Iterator[None]:
    """Networks on the in-process test driver are removed after the test."""
    yield
    remove_prefixed_networks(TESTDRV)


@pytest.fixture
def system_networks() -> Iterator[None]:
    """Networks on qemu:///system with the test prefix are stopped and removed after the test."""
    yield
    remove_prefixed_networks(SYSTEM)
