"""Fixtures of the fleet tests: a second test-driver host with other capacities, and API clients."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.jobs.conftest import eager  # noqa: F401

SMALL_HOST = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><active>2</active><nodes>1</nodes><sockets>1</sockets><cores>2</cores>
    <threads>1</threads></cpu>
  <memory>1572864</memory>
</node>
"""


@pytest.fixture
def small_host(db, tmp_path: Path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A second test-driver host of its own (test:///FILE): 2 CPUs, 1.5 GiB, no guests, pools or networks."""
    from kvmweb import hypervisor as hv
    from kvmweb.hosts.models import Host

    path = tmp_path / "small.xml"
    path.write_text(SMALL_HOST)
    host = Host.objects.create(name="small", uri=f"test://{path}", detected_domain_type="test")
    yield host
    hv.registry.connection(host.uri).close()


@pytest.fixture
def staff_api(staff) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def alice_api(owner) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(owner)
    return client
