"""Who hears of a shared VM on /ws/events/: its owner, the users and group members it is shared with, staff —
nobody else, and nobody any more once the share is gone."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from kvmweb import hypervisor as hv
from kvmweb.machines import services
from kvmweb.machines.selectors import vm_shares
from tests.conftest import spec_testdrv
from tests.events.test_events import _connect, published, run_async

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(django_user_model, owner, other_user, staff):  # type: ignore[no-untyped-def]
    carol = django_user_model.objects.create_user(username="carol", password="carol-pass-123")
    dave = django_user_model.objects.create_user(username="dave", password="dave-pass-1234")
    carol.groups.add(Group.objects.create(name="devs"))
    return {"alice": owner, "bob": other_user, "carol": carol, "dave": dave, "root": staff}


def _stopped(vm) -> hv.DomainEvent:  # type: ignore[no-untyped-def]
    return hv.DomainEvent("test:///default", str(vm.uuid), vm.name, "stopped", 0, hv.DomainState.SHUTOFF)


def test_state_events_reach_exactly_who_may_see_the_vm(people, test_host) -> None:  # type: ignore[no-untyped-def]
    p = people
    vm = services.vm_define(actor=p["alice"], host=test_host, doc=spec_testdrv())
    services.vm_share(actor=p["alice"], vm=vm, user=p["bob"], role="viewer")
    services.vm_share(actor=p["alice"], vm=vm, group="devs", role="operator")
    got = published(_stopped(vm), test_host, p["alice"], p["bob"], p["carol"], p["dave"], p["root"])
    heard = {name for name, ev in zip(["alice", "bob", "carol", "dave", "root"], got, strict=True) if ev is not None}
    assert heard == {"alice", "bob", "carol", "root"}
    assert all(ev["state"] == "shutoff" for ev in got if ev is not None)

    share = next(s for s in vm_shares(actor=p["alice"], vm=vm) if s.name == "bob")
    services.vm_unshare(actor=p["alice"], vm=vm, share_id=share.id)
    got = published(_stopped(vm), test_host, p["bob"], p["carol"])
    assert got[0] is None and got[1] is not None  # bob no longer hears of it; carol (through devs) still does


def test_sharing_and_unsharing_tell_the_people_concerned(people, test_host) -> None:  # type: ignore[no-untyped-def]
    """The page of someone who just got (or lost) a role re-reads itself: the "shared"/"unshared" event reaches
    the new user and, on removal, the user who lost access — not strangers."""
    p = people
    vm = services.vm_define(actor=p["alice"], host=test_host, doc=spec_testdrv())

    async def scenario() -> tuple[list, list]:
        from asgiref.sync import sync_to_async

        comms = [await _connect(p[n]) for n in ("alice", "bob", "dave")]
        try:
            result = await sync_to_async(services.vm_share)(actor=p["alice"], vm=vm, user=p["bob"], role="viewer")
            shared = [None if await c.receive_nothing(timeout=0.5) else await c.receive_json_from(timeout=3)
                      for c in comms]
            await sync_to_async(services.vm_unshare)(actor=p["alice"], vm=vm, share_id=result.share_id)
            unshared = [None if await c.receive_nothing(timeout=0.5) else await c.receive_json_from(timeout=3)
                        for c in comms]
            return shared, unshared
        finally:
            for c in comms:
                await c.disconnect()

    shared, unshared = run_async(scenario)
    assert [e and e["event"] for e in shared] == ["shared", "shared", None]
    assert [e and e["event"] for e in unshared] == ["unshared", "unshared", None]
    assert shared[1]["uuid"] == str(vm.uuid)


def test_a_deleted_vm_is_announced_to_the_people_it_was_shared_with(people, test_host) -> None:  # type: ignore[no-untyped-def]
    p = people
    vm = services.vm_define(actor=p["alice"], host=test_host, doc=spec_testdrv())
    services.vm_share(actor=p["alice"], vm=vm, group="devs", role="viewer")

    async def scenario() -> list:
        from asgiref.sync import sync_to_async

        comms = [await _connect(p[n]) for n in ("carol", "dave")]
        try:
            await sync_to_async(services.vm_delete)(actor=p["alice"], vm=vm)
            return [None if await c.receive_nothing(timeout=0.5) else await c.receive_json_from(timeout=3)
                    for c in comms]
        finally:
            for c in comms:
                await c.disconnect()

    carol, dave = run_async(scenario)
    assert carol is not None and carol["event"] == "undefined" and dave is None
