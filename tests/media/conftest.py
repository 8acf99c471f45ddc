"""Fixtures of the media library's tests (their ISO and image pools are tests.conftest.iso_pool_dir and
image_pool_dir, for every test)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import MEMTEST_ISO, PREFIX, unique_name
from tests.jobs.conftest import eager  # noqa: F401


@pytest.fixture
def memtest_iso(qemu_host, staff):  # type: ignore[no-untyped-def]
    """memtest86+ registered in the ISO library of qemu:///system (a file already on the host)."""
    from kvmweb.media.services import iso_register

    return iso_register(actor=staff, host=qemu_host, path=MEMTEST_ISO, name="memtest86+x64.iso")


@pytest.fixture
def disk_file() -> Iterator[Callable[..., str]]:
    """Make a small local disk image with ``qemu-img create`` (``fmt``, ``size``, a ``backing`` file and its
    format, ``-o`` options), or a file of the given ``data``, in a temporary folder removed afterwards."""
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}disks-")
    os.chmod(folder, 0o755)

    def make(name: str = "", *, fmt: str = "qcow2", size: str = "16M", backing: str | None = None,
             backing_fmt: str | None = None, options: str | None = None, data: bytes | None = None) -> str:
        path = os.path.join(folder, name or f"{unique_name('disk')}.{'img' if fmt == 'raw' else fmt}")
        if data is not None:
            with open(path, "wb") as out:
                out.write(data)
            return path
        command = ["qemu-img", "create", "-q", "-f", fmt]
        if backing:
            command += ["-u", "-b", backing, "-F", backing_fmt or "raw"]  # -u: never opened here
        if options:
            command += ["-o", options]
        subprocess.run([*command, path, *([size] if size else [])], check=True, capture_output=True)
        return path

    yield make
    shutil.rmtree(folder, ignore_errors=True)
