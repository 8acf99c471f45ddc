"""The ISO library's tests use an ISO pool of their own (prefixed name, temporary folder), removed at the end."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.conftest import MEMTEST_ISO, PREFIX, libvirt_available, virsh
from tests.jobs.conftest import eager  # noqa: F401

ISO_POOL = f"{PREFIX}isos-{os.getpid()}"


@pytest.fixture(scope="session")
def iso_pool_dir() -> Iterator[str]:
    """Point the portal's ISO pool (in this process) at a prefixed pool in a temporary folder."""
    from django.conf import settings

    base = tempfile.mkdtemp(prefix=f"{PREFIX}isos-")
    os.chmod(base, 0o755)
    old = settings.KVMWEB_ISO_POOL, settings.KVMWEB_ISO_DIR
    settings.KVMWEB_ISO_POOL, settings.KVMWEB_ISO_DIR = ISO_POOL, f"{base}/isos"
    yield settings.KVMWEB_ISO_DIR
    settings.KVMWEB_ISO_POOL, settings.KVMWEB_ISO_DIR = old
    if libvirt_available():
        for line in virsh("vol-list", ISO_POOL, check=False).splitlines():
            if line.split():
                virsh("vol-delete", line.split()[0], "--pool", ISO_POOL, check=False)
        virsh("pool-destroy", ISO_POOL, check=False)
        virsh("pool-undefine", ISO_POOL, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def memtest_iso(qemu_host, staff):  # type: ignore[no-untyped-def]
    """memtest86+ registered in the ISO library of qemu:///system (a file already on the host)."""
    from kvmweb.media.services import iso_register

    return iso_register(actor=staff, host=qemu_host, path=MEMTEST_ISO, name="memtest86+x64.iso")
