"""The event listener and the collector, as their own processes (``manage.py event_listener`` and ``collector``),
follow a host added while they run, while another host does not answer: a guest defined and started with virsh on
qemu:///system gets its record and its usage; the host removed, the listener stops following it."""
from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from kvmweb.hosts.models import Host
from kvmweb.machines.models import VirtualMachine
from kvmweb.monitoring import selectors
from tests.conftest import SYSTEM, memtest_spec, virsh
from tests.live import ARTIFACTS, ROOT, collector_process, server_env, stopped_at_end
from tests.monitoring.conftest import real_stats_redis  # noqa: F401  (fixture)

pytestmark = [pytest.mark.real]
NOBODY = "qemu+tcp://127.0.0.1:1/system"  # a port nothing listens on


def _wait(check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_a_host_added_later_is_followed_while_another_is_down(cleanup_domains, real_stats_redis: Any) -> None:  # noqa: F811
    Host.objects.create(name="down", uri=NOBODY)
    env = server_env()
    env["KVMWEB_STATS_INTERVAL"] = "1"
    env["KVMWEB_LOG_LEVEL"] = "INFO"
    log = ARTIFACTS / f"event-listener-follow-{time.monotonic_ns()}.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        listener = subprocess.Popen([sys.executable, "manage.py", "event_listener", "--rescan", "0.5"], cwd=ROOT,
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
    with stopped_at_end(listener), collector_process(env, rescan=0.5):
        _wait(lambda: f"cannot listen to {NOBODY}" in log.read_text(errors="replace"))
        host = Host.objects.create(name="local", uri=SYSTEM)
        _wait(lambda: "listening to domain events of qemu:///system" in log.read_text(errors="replace"))
        doc = memtest_spec()
        cleanup_domains.append(doc.name)
        path = ARTIFACTS / f"{doc.name}.xml"
        path.write_text(doc.to_xml())
        virsh("define", str(path))
        path.unlink()
        uuid = virsh("domuuid", doc.name).strip()
        _wait(lambda: VirtualMachine.objects.filter(host=host, uuid=uuid).exists())  # the define event
        virsh("start", doc.name)
        _wait(lambda: (found := selectors.latest_for([uuid])) and found[uuid].cpu_pct is not None)
        assert selectors.latest_for([uuid])[uuid].host == str(host.pk)
        assert listener.poll() is None
        pk = host.pk
        host.delete()
        _wait(lambda: f"stopped following host #{pk}" in log.read_text(errors="replace"))
