"""The machines side of monitoring, on libvirt's test driver and this run's Redis keys: the VM stats API (who may
read it, its errors, the series' shape), the history dropped with the VM, the list's CPU and memory columns and
their order, and the collector's live ``stats`` events — each person gets only the VMs they may see."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.machines import services
from kvmweb.machines.selectors import vm_list
from kvmweb.machines.usage import stats_publish
from kvmweb.monitoring import store
from tests.conftest import spec_testdrv
from tests.events.test_events import _connect, run_async

pytestmark = pytest.mark.django_db


def _vm(user, host, *, running=True):  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=user, host=host, doc=spec_testdrv(vcpus=2))
    if running:
        services.vm_start(actor=user, vm=vm)
    return vm


@pytest.fixture
def vm(owner, test_host):  # type: ignore[no-untyped-def]
    made = _vm(owner, test_host)
    yield made
    store.history_delete(store.VM, str(made.uuid))


def _sample(**values: float) -> tuple[float | None, ...]:
    return tuple(values.get(m) for m in store.METRICS)


def _client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def cpu(series: dict) -> dict[int, float]:  # type: ignore[type-arg]
    """The measured CPU points of a series, by time (the window itself moves on with the clock)."""
    return {t: v for t, v in zip(series["t"], series["values"]["cpu_pct"], strict=True) if v is not None}


def test_stats_api_series_and_who_may_read_it(vm, owner, other_user, staff, django_user_model) -> None:  # type: ignore[no-untyped-def]
    t0 = time.time() // 5 * 5 - 20  # t0 and t0 + 1: in one step of every range (all are multiples of 5 s)
    writer = store.HistoryWriter(store.VM)
    writer.write(t0, {str(vm.uuid): _sample(cpu_pct=40.0, mem_used_bytes=50 * 2**20, net_rx_bps=1000.0)})
    writer.write(t0 + 1, {str(vm.uuid): _sample(cpu_pct=60.0, mem_used_bytes=50 * 2**20, net_rx_bps=3000.0)})
    url = f"/api/v1/vms/{vm.uuid}/stats/"

    r = _client(owner).get(url)  # the default range: the last hour
    assert r.status_code == 200
    body = r.json()
    assert body["range"] == "1h" and body["step"] == 5 and len(body["t"]) == 720
    assert set(body["values"]) == set(store.METRICS)
    assert all(len(v) == 720 for v in body["values"].values())
    assert body["t"] == sorted(body["t"]) and body["t"][1] - body["t"][0] == 5
    measured = [i for i, v in enumerate(body["values"]["cpu_pct"]) if v is not None]
    assert [body["t"][i] for i in measured] == [int(t0)]  # the rest of the hour is gaps
    (i,) = measured  # both samples in one step: their average
    assert body["values"]["cpu_pct"][i] == pytest.approx(50.0)
    assert body["values"]["net_rx_bps"][i] == pytest.approx(2000.0)
    assert body["values"]["mem_used_bytes"][i] == 50 * 2**20
    assert all(v is None for v in body["values"]["disk_rd_bps"])  # never measured: gaps, not zeros

    day = _client(owner).get(url + "?range=1d").json()
    assert day["range"] == "1d" and day["step"] == 60 and len(day["t"]) == 1440
    assert [v for v in day["values"]["cpu_pct"] if v is not None] == [pytest.approx(50.0)]
    month = _client(owner).get(url + "?range=30d").json()
    assert month["step"] == 1800 and [v for v in month["values"]["cpu_pct"] if v is not None] == [pytest.approx(50.0)]

    bad = _client(owner).get(url + "?range=1w")
    assert bad.status_code == 400 and bad["Content-Type"].startswith("application/json")
    assert bad.json()["error"] == "invalid" and "range" in bad.json()["fields"] and "1w" in bad.json()["detail"]

    # someone else: the same 404 as a VM that does not exist, whatever the range; a viewer share and staff: 200
    gone = _client(other_user).get(url)
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert _client(other_user).get(url + "?range=1w").status_code == 404
    assert _client(owner).get("/api/v1/vms/00000000-0000-4000-8000-000000000000/stats/").status_code == 404
    assert _client(None).get(url).status_code in (401, 403)
    services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    shared = _client(other_user).get(url)
    assert shared.status_code == 200 and cpu(shared.json()) == cpu(body) == {int(t0): pytest.approx(50.0)}
    assert cpu(_client(staff).get(url).json()) == cpu(body)


def test_deleting_a_vm_drops_its_history(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _vm(owner, test_host, running=False)
    uuid = str(vm.uuid)
    store.HistoryWriter(store.VM).write(time.time(), {uuid: _sample(cpu_pct=5.0)})
    keys = [store.history_key(store.VM, uuid, tier) for tier in store.RANGES]
    r = store.client()
    assert r.exists(*keys) == len(keys)
    services.vm_delete(actor=owner, vm=vm)
    assert r.exists(*keys) == 0


def test_list_shows_and_sorts_by_the_latest_usage(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    busy, idle, hungry = (_vm(owner, test_host) for _ in range(3))
    off = _vm(owner, test_host, running=False)
    latest = {str(busy.uuid): {"cpu_pct": 87.5, "mem_used_bytes": 100 * 2**20, "mem_pct": 40.0},
              str(idle.uuid): {"cpu_pct": 2.0, "mem_used_bytes": 50 * 2**20, "mem_pct": 20.0},
              str(hungry.uuid): {"cpu_pct": 30.0, "mem_used_bytes": 200 * 2**20, "mem_pct": 80.0},
              str(off.uuid): {"cpu_pct": 99.0, "mem_used_bytes": 300 * 2**20, "mem_pct": 90.0}}  # stale: ignored
    store.latest_write(test_host.pk, time.time(), latest, [], None, ttl_ms=60_000)
    try:
        conn = hv.registry.connection(test_host.uri)
        mine = {str(v.uuid) for v in (busy, idle, hungry, off)}

        def order(sort: str) -> list[str]:
            return [r.uuid for r in vm_list(actor=owner, sort=sort).rows if r.uuid in mine]

        before = conn.calls
        by_name = vm_list(actor=owner)
        name_calls = conn.calls - before
        rows = {r.uuid: r for r in by_name.rows}
        assert rows[str(busy.uuid)].cpu_pct == 87.5 and rows[str(hungry.uuid)].mem_used_bytes == 200 * 2**20
        assert rows[str(off.uuid)].cpu_pct is None  # not running: no usage shown
        before = conn.calls
        assert order("cpu") == [str(busy.uuid), str(hungry.uuid), str(idle.uuid), str(off.uuid)]
        assert conn.calls - before == name_calls  # sorting by usage costs no libvirt call more
        assert order("memory") == [str(hungry.uuid), str(busy.uuid), str(idle.uuid), str(off.uuid)]

        client = Client()
        client.force_login(owner)
        html = client.get("/vms/?sort=cpu").content.decode()
        assert "87.5 %" in html and "200 MiB" in html and "99.0 %" not in html
        assert html.index(busy.name) < html.index(hungry.name) < html.index(idle.name)
        assert 'aria-sort="descending"' in html
        assert client.get("/vms/?sort=sideways").status_code == 200  # a bad sort: a message, the list by name
        api = _client(owner)
        body = api.get("/api/v1/vms/?sort=memory").json()
        listed = [r for r in body["results"] if r["uuid"] in mine]
        assert [r["uuid"] for r in listed][0] == str(hungry.uuid) and listed[0]["mem_pct"] == 80.0
        bad = api.get("/api/v1/vms/?sort=sideways")
        assert bad.status_code == 400 and "sort" in bad.json()["fields"]
    finally:
        store.client().delete(*[store.latest_key(store.VM, u) for u in latest])


# ------------------------------------------------------------------------------------------------ live events
@pytest.fixture
def in_memory_layer(settings):  # type: ignore[no-untyped-def]
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def _received(host, rows, users):  # type: ignore[no-untyped-def]
    """Hand one sample to the collector's publish callback; the ``stats`` event each user's browser got (None:
    nothing)."""
    async def scenario():  # type: ignore[no-untyped-def]
        from asgiref.sync import sync_to_async

        comms = [await _connect(u) for u in users]
        try:
            await sync_to_async(stats_publish)(host, 1_700_000_000, rows)
            return [None if await c.receive_nothing(timeout=0.5) else await c.receive_json_from(timeout=3)
                    for c in comms]
        finally:
            for c in comms:
                await c.disconnect()

    return run_async(scenario)


@pytest.mark.django_db(transaction=True)
def test_stats_events_reach_only_who_may_see(owner, other_user, staff, test_host, django_user_model,
                                              in_memory_layer) -> None:  # type: ignore[no-untyped-def]
    make = django_user_model.objects.create_user
    carol, dave, erin = (make(username=n, password=f"{n}-pass-1234") for n in ("carol", "dave", "erin"))
    ex = make(username="ex", password="ex-pass-12345", is_active=False)
    team = Group.objects.create(name="team")
    dave.groups.add(team)
    ex.groups.add(team)
    alices, bobs = _vm(owner, test_host), _vm(other_user, test_host)
    services.vm_share(actor=owner, vm=alices, user=carol, role="viewer")
    services.vm_share(actor=other_user, vm=bobs, group=team, role="operator")
    stray = "6f1d7c1e-0000-4000-8000-000000000001"  # running, with no record yet: staff's only
    rows = [{"uuid": str(v), "name": "x", "vcpus": 2, "mem_bytes": 2**28, "cpu_pct": c, "cpu_host_pct": c / 2,
             "mem_used_bytes": 2**27, "mem_pct": 50.0, "disk_rd_bps": 1.0, "disk_wr_bps": 2.0, "disk_rd_iops": 0.5,
             "disk_wr_iops": 0.25, "net_rx_bps": 3.0, "net_tx_bps": 4.0}
            for v, c in ((alices.uuid, 10.0), (bobs.uuid, 20.0), (stray, 30.0))]
    alice, bob, c_got, d_got, e_got, root = _received(test_host, rows, [owner, other_user, carol, dave, erin, staff])

    def uuids(ev):  # type: ignore[no-untyped-def]
        assert ev["kind"] == "stats" and ev["host"] == "testdrv" and ev["t"] == 1_700_000_000
        return sorted(v["uuid"] for v in ev["vms"])

    assert uuids(alice) == [str(alices.uuid)] and uuids(c_got) == [str(alices.uuid)]
    assert uuids(bob) == [str(bobs.uuid)] and uuids(d_got) == [str(bobs.uuid)]  # dave: through his group
    assert e_got is None  # erin may see none of them: no event at all
    assert uuids(root) == sorted([str(alices.uuid), str(bobs.uuid), stray])
    assert alice["vms"][0] == {"uuid": str(alices.uuid), "cpu_pct": 10.0, "mem_used_bytes": 2**27, "mem_pct": 50.0,
                               "disk_rd_bps": 1.0, "disk_wr_bps": 2.0, "disk_rd_iops": 0.5, "disk_wr_iops": 0.25,
                               "net_rx_bps": 3.0, "net_tx_bps": 4.0}

    # the share goes: carol hears nothing more of alice's VM
    services.vm_unshare(actor=owner, vm=alices, share_id=alices.shares.get(user=carol).pk)
    (c_after,) = _received(test_host, rows, [carol])
    assert c_after is None
