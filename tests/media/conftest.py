"""Fixtures of the ISO library's tests (their ISO pool is tests.conftest.iso_pool_dir, for every test)."""
from __future__ import annotations

import pytest

from tests.conftest import MEMTEST_ISO
from tests.jobs.conftest import eager  # noqa: F401


@pytest.fixture
def memtest_iso(qemu_host, staff):  # type: ignore[no-untyped-def]
    """memtest86+ registered in the ISO library of qemu:///system (a file already on the host)."""
    from kvmweb.media.services import iso_register

    return iso_register(actor=staff, host=qemu_host, path=MEMTEST_ISO, name="memtest86+x64.iso")
