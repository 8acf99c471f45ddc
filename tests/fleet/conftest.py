"""Fixtures of the fleet tests: a second test-driver host with other capacities; the API clients are the storage tests'."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.conftest import eager  # noqa: F401
from tests.provisioning.conftest import open_testdrv, testdrv_volumes  # noqa: F401
from tests.storage.conftest import alice_api, staff_api  # noqa: F401

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



# ------------------------------------------------------------------------------------------------ two real hosts
@pytest.fixture
def two_hosts(qemu_host, qemu_host2, second_host, settings, cleanup_domains):  # type: ignore[no-untyped-def]
    """qemu:///system ("local") and the second host ("second"); host 1's migration address is its end of the veth
    pair (its URI names no host). Domains of both are removed after the test."""
    settings.KVMWEB_MIGRATION_ADDRESSES = {qemu_host.name: second_host.h1_ip}
    return qemu_host, qemu_host2


@pytest.fixture
def own_disks(two_hosts, second_host) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A folder each host has on its own at the same path (host 2's is bind-mounted in its namespace), with a
    storage pool over it on both hosts: where a disk copy goes."""
    from kvmweb import hypervisor as hv
    from tests.conftest import unique_name

    folder = second_host.disks / unique_name("pool")
    folder.mkdir(mode=0o755)
    name = unique_name("pool")
    pools = [hv.pool_define(hv.registry.connection(h.uri), hv.PoolSpec(name=name, target_path=str(folder)))
             for h in two_hosts]
    yield {"name": name, "path": str(folder)}
    for pool in pools:
        try:
            pool.refresh()
            for volume in pool.volumes():
                pool.volume(volume.name).delete()
            pool.stop()
            pool.undefine()
        except hv.HypervisorError:
            pass
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def host2_run(second_host: Any, *argv: str) -> subprocess.CompletedProcess[str]:  # type: ignore[misc]
    """Run a command in host 2's mount namespace (it sees host 2's own disks folder)."""
    return subprocess.run(["nsenter", "-t", str(second_host.init_pid), "-m", "--", *argv], capture_output=True,
                          text=True)
