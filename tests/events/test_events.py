"""Fast tests of live events: libvirt domain events through the listener, and who receives what on /ws/events/."""
from __future__ import annotations

import threading
import uuid as uuid_mod

import pytest
from channels.testing import WebsocketCommunicator

from kvmweb import hypervisor as hv
from kvmweb.events.consumers import EventsConsumer
from kvmweb.events.publish import publish
from kvmweb.events.services import vm_event_publish
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db(transaction=True)


def run_async(fn):  # type: ignore[no-untyped-def]
    """Run the coroutine function in a thread of its own (the test thread may already run a loop: Playwright)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fn()).result()


def test_listener_reports_state_changes_of_the_test_driver(test_host) -> None:  # type: ignore[no-untyped-def]
    got: list[hv.DomainEvent] = []
    arrived = threading.Event()

    def on_event(ev: hv.DomainEvent) -> None:
        got.append(ev)
        if ev.event == "started":
            arrived.set()

    listener = hv.DomainEventListener("test:///default", on_event)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert listener.connected.wait(5)
        conn = hv.registry.connection("test:///default")
        dom = hv.define(conn, spec_testdrv())
        dom.start()
        assert arrived.wait(5)
        dom.destroy()
    finally:
        stop.set()
        thread.join(5)
    mine = [e for e in got if e.uuid == dom.uuid]
    assert [e.event for e in mine][:2] == ["defined", "started"]
    assert mine[1].state == hv.DomainState.RUNNING


async def _connect(user):  # type: ignore[no-untyped-def]
    comm = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=3))["kind"] == "hello"
    return comm


def test_each_browser_gets_only_its_events(owner, other_user, staff) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> None:
        alice, bob, root = await _connect(owner), await _connect(other_user), await _connect(staff)
        try:
            from asgiref.sync import sync_to_async

            await sync_to_async(publish)({"kind": "job", "id": 1, "state": "running"}, user_ids=[owner.pk])
            assert (await alice.receive_json_from(timeout=3))["id"] == 1
            assert (await root.receive_json_from(timeout=3))["id"] == 1
            assert await bob.receive_nothing(timeout=0.3)
        finally:
            for comm in (alice, bob, root):
                await comm.disconnect()

    run_async(scenario)


def test_anonymous_websocket_is_refused() -> None:
    from django.contrib.auth.models import AnonymousUser

    async def scenario() -> None:
        comm = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
        comm.scope["user"] = AnonymousUser()
        connected, _ = await comm.connect()
        assert not connected

    run_async(scenario)


def test_vm_event_goes_to_its_owner_and_staff_only(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VirtualMachine

    vm_uuid = str(uuid_mod.uuid4())
    VirtualMachine.objects.create(host=test_host, uuid=vm_uuid, name="x", owner=owner)
    event = hv.DomainEvent("test:///default", vm_uuid, "x", "stopped", 0, hv.DomainState.SHUTOFF)

    async def scenario() -> None:
        from asgiref.sync import sync_to_async

        alice, bob = await _connect(owner), await _connect(other_user)
        try:
            await sync_to_async(vm_event_publish)(event, test_host)
            got = await alice.receive_json_from(timeout=3)
            assert got == {"kind": "vm", "uuid": vm_uuid, "name": "x", "event": "stopped", "state": "shutoff",
                           "label": "shut off", "host": "testdrv"}
            assert await bob.receive_nothing(timeout=0.3)
        finally:
            await alice.disconnect()
            await bob.disconnect()

    run_async(scenario)
