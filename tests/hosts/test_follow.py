"""The daemons follow the Host table (``hosts.follow.hosts_follow``): a host added gets its thread, a host disabled,
moved to another URI or removed has it stopped, a thread that ended is started again; the event listener follows a
host added while another one does not answer (fast: libvirt's test driver and a URI that cannot be opened). The
collector's back-off: tests/monitoring/test_collector_testdriver.py."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from kvmweb import hypervisor as hv
from kvmweb.hosts.follow import hosts_follow
from kvmweb.hosts.models import Host
from kvmweb.machines.events import listen_host
from kvmweb.machines.models import VirtualMachine
from tests.conftest import _cleanup_prefixed, spec_testdrv

pytestmark = pytest.mark.django_db(transaction=True)
DOWN = "test:///nonexistent-file.xml"  # libvirt refuses to open it, at once


def wait_for(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Started:
    """A ``start`` that records each thread it starts; ``end(i)`` makes thread ``i`` end by itself."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, threading.Event, threading.Event]] = []

    def __call__(self, host: Host, host_stop: threading.Event) -> threading.Thread:
        ended = threading.Event()
        self.runs.append((host.name, host.uri, host_stop, ended))
        thread = threading.Thread(target=_until, args=(host_stop, ended))
        thread.start()
        return thread

    def names(self) -> list[str]:
        return [name for name, _uri, _stop, _ended in self.runs]

    def stopped(self, i: int) -> bool:
        return self.runs[i][2].is_set()


def _until(stop: threading.Event, ended: threading.Event) -> None:
    while not stop.is_set() and not ended.is_set():
        time.sleep(0.01)


@pytest.fixture
def follow() -> Iterator[Callable[..., Started]]:
    loops: list[tuple[threading.Event, threading.Thread]] = []

    def run(**kw: object) -> Started:
        started, stop = Started(), threading.Event()
        loop = threading.Thread(target=hosts_follow, args=(stop,), kwargs={"rescan": 0.05, "start": started, **kw})
        loop.start()
        loops.append((stop, loop))
        return started

    yield run
    for stop, loop in loops:
        stop.set()
        loop.join(10)
        assert not loop.is_alive()


def test_hosts_added_disabled_moved_and_removed_are_followed(follow, test_host) -> None:  # type: ignore[no-untyped-def]
    started = follow()
    wait_for(lambda: started.names() == ["testdrv"])
    second = Host.objects.create(name="second", uri="test:///default?second")
    wait_for(lambda: started.names() == ["testdrv", "second"])
    second.enabled = False
    second.save()
    wait_for(lambda: started.stopped(1))  # disabled: its thread stops
    second.enabled = True
    second.save()
    wait_for(lambda: started.names() == ["testdrv", "second", "second"])
    second.uri = "test:///default?moved"
    second.save()
    wait_for(lambda: started.stopped(2) and len(started.runs) == 4)  # moved: stopped and started on the new URI
    assert started.runs[3][1] == "test:///default?moved"
    second.delete()
    wait_for(lambda: started.stopped(3))  # removed
    assert not started.stopped(0) and len(started.runs) == 4


def test_every_host_and_a_thread_that_ended_is_started_again(follow, test_host) -> None:  # type: ignore[no-untyped-def]
    Host.objects.create(name="off", uri="test:///default?off", enabled=False)
    started = follow(every=True)  # the workers follow disabled hosts too: their jobs still run
    wait_for(lambda: sorted(started.names()) == ["off", "testdrv"])
    first = started.names().index("testdrv")
    started.runs[first][3].set()  # its thread ends by itself (a worker process that exited)
    wait_for(lambda: started.names().count("testdrv") == 2)


def test_the_event_listener_follows_a_host_added_while_another_is_down(follow) -> None:  # type: ignore[no-untyped-def]
    Host.objects.create(name="down", uri=DOWN)
    stop = threading.Event()
    loop = threading.Thread(target=hosts_follow, args=(stop,), kwargs={"rescan": 0.05, "start": listen_host})
    loop.start()
    try:
        wait_for(lambda: any(t.name == "events-down" for t in threading.enumerate()))
        host = Host.objects.create(name="testdrv", uri="test:///default")
        wait_for(lambda: any(t.name == "events-testdrv" for t in threading.enumerate()))
        dom = hv.domain_define(hv.registry.connection("test:///default"), spec_testdrv())
        # its record is made (by the define event, or by the reconciliation when the listener connects): the
        # listener of the host added later works while "down" is tried again
        wait_for(lambda: VirtualMachine.objects.filter(host=host, uuid=dom.uuid).exists())
        assert any(t.name == "events-down" for t in threading.enumerate())
        host.enabled = False
        host.save()
        wait_for(lambda: not any(t.name == "events-testdrv" for t in threading.enumerate()))
    finally:
        stop.set()
        loop.join(10)
        _cleanup_prefixed("test:///default")
    assert not loop.is_alive()
    wait_for(lambda: not any(t.name.startswith("events-") for t in threading.enumerate()))

