"""Fast tests of live events: libvirt domain events through the listener, and who receives what on /ws/events/."""
from __future__ import annotations

import threading
import uuid as uuid_mod

import pytest
from channels.testing import WebsocketCommunicator

from kvmweb import hypervisor as hv
from kvmweb.events.consumers import EventsConsumer
from kvmweb.events.publish import publish
from kvmweb.machines.events import vm_event_publish
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
        dom = hv.domain_define(conn, spec_testdrv())
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


# ------------------------------------------------------------------------------------------ records follow events
TESTDRV = "test:///default"


def event_of(action, name: str, kind: str) -> hv.DomainEvent:  # type: ignore[no-untyped-def]
    """Run ``action`` while a listener follows the test driver; the ``kind`` event of the domain ``name``."""
    got: list[hv.DomainEvent] = []
    arrived = threading.Event()

    def on_event(ev: hv.DomainEvent) -> None:
        got.append(ev)
        if ev.name == name and ev.event == kind:
            arrived.set()

    listener = hv.DomainEventListener(TESTDRV, on_event)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert listener.connected.wait(5)
        action()
        assert arrived.wait(5), f"no {kind} event of {name}: {got}"
    finally:
        stop.set()
        thread.join(5)
    return next(e for e in got if e.name == name and e.event == kind)


def published(event: hv.DomainEvent, host, *users) -> list[dict | None]:  # type: ignore[no-untyped-def]
    """Hand ``event`` to vm_event_publish; what each of ``users``' browsers received (None: nothing)."""
    async def scenario() -> list[dict | None]:
        from asgiref.sync import sync_to_async

        comms = [await _connect(u) for u in users]
        try:
            await sync_to_async(vm_event_publish)(event, host)
            return [None if await c.receive_nothing(timeout=0.5) else await c.receive_json_from(timeout=3)
                    for c in comms]
        finally:
            for c in comms:
                await c.disconnect()

    return run_async(scenario)


def test_defined_and_undefined_events_keep_the_records_true(owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    """A domain defined behind the portal's back (``virsh define``: straight to libvirt; the test driver lives in
    this process, so libvirt is called here as virsh would) gets an unowned record from its "defined" event; its
    "undefined" event, once the domain is really gone, drops the record."""
    from kvmweb.machines.models import VirtualMachine
    from kvmweb.machines.selectors import host_drift

    conn = hv.registry.connection(TESTDRV)
    doc = spec_testdrv()
    defined = event_of(lambda: hv.domain_define(conn, doc), doc.name, "defined")
    assert not VirtualMachine.objects.filter(uuid=defined.uuid).exists()  # nobody wrote a record yet

    alice, root = published(defined, test_host, owner, staff)
    record = VirtualMachine.objects.get(uuid=defined.uuid)
    assert (record.host_id, record.name, record.owner_id) == (test_host.pk, doc.name, None)
    assert defined.uuid not in {u for u, _n in host_drift(test_host).missing}
    assert alice is None  # unowned: staff's
    assert root == {"kind": "vm", "uuid": defined.uuid, "name": doc.name, "event": "defined", "state": "shutoff",
                    "label": "shut off", "host": "testdrv"}
    published(defined, test_host)  # the same event again (a redelivery) changes nothing
    assert VirtualMachine.objects.filter(uuid=defined.uuid).count() == 1

    undefined = event_of(lambda: hv.domain_lookup(conn, defined.uuid).undefine(), doc.name, "undefined")
    (root,) = published(undefined, test_host, staff)
    assert not VirtualMachine.objects.filter(uuid=defined.uuid).exists()
    assert root is not None and (root["event"], root["state"], root["label"]) == ("undefined", "undefined", "deleted")


def test_owned_records_survive_their_events_and_the_owner_hears_of_the_deletion(owner, other_user, staff,
                                                                                 test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VirtualMachine
    from kvmweb.machines.services import vm_define

    doc = spec_testdrv()
    holder: list = []
    defined = event_of(lambda: holder.append(vm_define(actor=owner, host=test_host, doc=doc)), doc.name, "defined")
    vm = holder[0]
    alice, bob = published(defined, test_host, owner, other_user)
    assert VirtualMachine.objects.get(pk=vm.pk).owner_id == owner.pk  # the event does not take the VM from alice
    assert alice is not None and alice["event"] == "defined" and bob is None

    # An "undefined" event for a domain that is back (redefined with the same UUID) keeps the record.
    stale = hv.DomainEvent(TESTDRV, str(vm.uuid), vm.name, "undefined", 0, None)
    published(stale, test_host)
    assert VirtualMachine.objects.get(pk=vm.pk).owner_id == owner.pk

    conn = hv.registry.connection(TESTDRV)
    undefined = event_of(lambda: hv.domain_lookup(conn, str(vm.uuid)).undefine(), doc.name, "undefined")
    alice, bob, root = published(undefined, test_host, owner, other_user, staff)
    assert not VirtualMachine.objects.filter(pk=vm.pk).exists()
    assert alice is not None and (alice["uuid"], alice["label"]) == (str(vm.uuid), "deleted")  # her list re-reads
    assert root is not None and bob is None
