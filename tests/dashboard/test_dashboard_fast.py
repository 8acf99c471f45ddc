"""The dashboard (``/``) through Django's test client on libvirt's test driver: staff see each host's capacity and
allocation exactly as libvirt counts them, its pools, its versions and a host that does not answer (the page still
renders); a user sees only the VMs they may see (owned, shared) and their quota; anonymous visitors are sent to log
in; the live parts answer alone (no page around them) and only to whom they belong."""
from __future__ import annotations

import re
from types import SimpleNamespace

import libvirt
import pytest
from django.test import Client

from kvmweb.accounts.models import Quota
from kvmweb.hosts.models import Host
from kvmweb.jobs.models import Job
from kvmweb.machines import services
from tests.conftest import spec_testdrv, unique_name
from tests.live import free_port
from tests.monitoring.fake_redis import FakeRedis

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def stats_store(monkeypatch: pytest.MonkeyPatch) -> FakeRedis:
    """The monitoring store on an in-memory Redis stand-in: fast tests need no Redis, and start with no sample."""
    from kvmweb.monitoring import store

    fake = FakeRedis()
    monkeypatch.setattr(store, "client", lambda: fake)
    return fake


def session(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def figures(html: str, name: str) -> list[str]:
    """The values of ``<data value=... data-figure="name">`` in the page, in order."""
    return re.findall(r'<data value="([^"]*)" data-figure="' + re.escape(name) + '"', html)


def host_block(html: str, host: str) -> str:
    """The article of one host on the dashboard."""
    match = re.search(r'<article class="dash-host" data-host="' + re.escape(host) + r'".*?</article>', html, re.S)
    assert match, f"no card for host {host}"
    return match.group(0)


def libvirt_says(uri: str) -> dict[str, int]:
    """The figures straight from libvirt (not through the portal's code): ``virsh nodeinfo`` and every domain's
    ``dominfo``, the pool's ``pool-info``."""
    conn = libvirt.open(uri)
    try:
        _model, memory_mib, cpus, *_ = conn.getInfo()
        doms = conn.listAllDomains()
        pool = conn.storagePoolLookupByName("default-pool").info()
        return {"cpus": cpus, "memory": memory_mib * 1024 * 1024, "vms": len(doms),
                "vcpus": sum(d.info()[3] for d in doms), "max_memory": sum(d.maxMemory() for d in doms) * 1024,
                "pool_capacity": pool[1], "pool_allocation": pool[2], "pool_available": pool[3],
                "version": conn.getLibVersion()}
    finally:
        conn.close()


def test_staff_see_capacity_and_allocation_as_libvirt_counts_them(staff, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(vcpus=3, memory_kib=768 * 1024))
    services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(vcpus=2, memory_kib=300 * 1024))
    r = session(staff).get("/")
    assert r.status_code == 200
    card = host_block(r.content.decode(), test_host.name)
    truth = libvirt_says(test_host.uri)
    assert truth["vms"] >= 3  # the driver's own "test" domain and ours
    assert figures(card, "cpus-capacity") == [str(truth["cpus"])]
    assert figures(card, "memory-capacity") == [str(truth["memory"])]
    assert figures(card, "cpus-allocated") == [str(truth["vcpus"])]
    assert figures(card, "memory-allocated") == [str(truth["max_memory"])]
    assert figures(card, "vms") == [str(truth["vms"])]
    assert figures(card, "pool-capacity") == [str(truth["pool_capacity"])]
    assert figures(card, "pool-allocation") == [str(truth["pool_allocation"])]
    assert figures(card, "pool-available") == [str(truth["pool_available"])]
    v = truth["version"]
    assert f'data-fact="libvirt">{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}<' in card
    assert 'data-fact="hypervisor">TEST ' in card and 'data-fact="accel">' in card
    # without a usage sample "used" is a dash, not a number
    assert figures(card, "cpus-used") == [] and 'data-figure="cpus-used" title="No usage sample yet">—' in card


def test_an_unreachable_host_is_named_with_its_reason_and_the_page_renders(staff, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    gone = Host.objects.create(name="gone", uri=f"qemu+tcp://127.0.0.1:{free_port()}/system")
    services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    r = session(staff).get("/")
    assert r.status_code == 200
    html = r.content.decode()
    down = host_block(html, gone.name)
    assert "does not answer" in down and "Connection refused" in down
    assert figures(down, "cpus-capacity") == []
    assert figures(host_block(html, test_host.name), "cpus-capacity")  # the other host is read as usual
    # a user whose VM sits on the host that does not answer still gets the page, with the reason
    from kvmweb.machines.models import VirtualMachine

    VirtualMachine.objects.create(uuid="0b3e4f50-1111-4222-8333-944455556666", name="far-away", host=gone, owner=owner)
    mine = session(owner).get("/")
    assert mine.status_code == 200
    text = mine.content.decode()
    assert "Host <strong>gone</strong> does not answer" in text and "far-away" in text


def test_a_user_sees_only_their_vms_and_their_quota(owner, other_user, test_host) -> None:  # type: ignore[no-untyped-def]
    mine = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(name=unique_name("mine"), vcpus=2))
    theirs = services.vm_define(actor=other_user, host=test_host, doc=spec_testdrv(name=unique_name("theirs")))
    lent = services.vm_define(actor=other_user, host=test_host, doc=spec_testdrv(name=unique_name("lent")))
    services.vm_share(actor=other_user, vm=lent, user=owner, role="viewer")
    services.vm_start(actor=owner, vm=mine)
    Quota.objects.create(user=owner, max_vms=4, max_vcpus=8)
    job = Job.objects.create(kind="vm.create", title=f"Create VM {mine.name}", actor=owner, state="running", progress=40)
    Job.objects.create(kind="vm.create", title="Someone else's job", actor=other_user, state="succeeded")

    r = session(owner).get("/")
    assert r.status_code == 200
    html = r.content.decode()
    assert mine.name in html and lent.name in html and theirs.name not in html
    assert "your role: viewer" in html
    assert figures(html, "vm-total") == ["2"]
    assert 'data-state-count="running">1 running' in html and 'data-state-count="shutoff">1 shut off' in html
    assert "dash-hosts" not in html and "test:///default" not in html  # hosts are staff's
    quota = dict(re.findall(r'<tr data-quota="(\w+)".*?data-figure="quota-used">(\d+)', html, re.S))
    assert quota == {"vms": "1", "vcpus": "2", "memory_mib": "256", "disk_gib": "0"}  # the shared VM is not hers
    assert figures(html, "quota-limit") == ["4", "8"]
    assert f'data-job-id="{job.pk}" data-job-finished="0"' in html and "Someone else" not in html

    # the other user: their two VMs, not hers
    other = session(other_user).get("/").content.decode()
    assert theirs.name in other and lent.name in other and mine.name not in other


def test_parts_answer_alone_and_only_to_whom_they_belong(owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    alice = session(owner)
    part = alice.get("/dashboard/part/vms/", HTTP_HX_REQUEST="true").content.decode()
    assert vm.name in part and "<html" not in part
    assert alice.get("/dashboard/part/hosts/").status_code == 403
    assert "<html" not in alice.get("/dashboard/part/quota/").content.decode()
    hosts = session(staff).get("/dashboard/part/hosts/").content.decode()
    assert "<html" not in hosts and figures(host_block(hosts, test_host.name), "cpus-capacity")
    assert session(staff).post("/dashboard/part/vms/").status_code == 405


def test_anonymous_visitors_are_sent_to_log_in() -> None:
    for url in ("/", "/dashboard/part/vms/", "/dashboard/part/hosts/"):
        r = Client().get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), url


def test_usage_samples_fill_used_and_the_busiest_vms(staff, owner, test_host, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With samples in the monitoring store (replaced here by a stand-in with the store's read functions), "used"
    and the busiest VMs show them: the top lists are sorted, five at most, linked to the VMs' pages."""
    from kvmweb.dashboard import selectors

    vms = [services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(name=unique_name(f"busy{i}")))
           for i in range(7)]
    for vm in vms:
        services.vm_start(actor=owner, vm=vm)
    samples = {str(vm.uuid): SimpleNamespace(t=1, cpu_pct=10.0 * i, cpu_host_pct=1.0 * i, mem_used_bytes=2**20 * i,
                                             mem_pct=1.0, disk_rd_bps=100.0 * i, disk_wr_bps=1.0, disk_rd_iops=1.0,
                                             disk_wr_iops=1.0, net_rx_bps=7.0 * (7 - i), net_tx_bps=0.0)
               for i, vm in enumerate(vms)}
    asked: list[list[str]] = []

    def latest_for(uuids: list[str]) -> dict[str, object]:
        asked.append(list(uuids))
        return {u: samples[u] for u in uuids if u in samples}

    store = SimpleNamespace(latest_for=latest_for,
                            host_latest=lambda host_id: SimpleNamespace(t=1, cpu_pct=25.0, mem_used_bytes=2**30,
                                                                        mem_pct=33.3))
    monkeypatch.setattr(selectors, "monitoring", store)
    card = host_block(session(staff).get("/").content.decode(), test_host.name)
    assert figures(card, "cpus-used") == ["25.0"] and figures(card, "memory-used") == [str(2**30)]
    cpu = re.search(r'data-top="cpu">.*?</div>', card, re.S)
    assert cpu is not None
    names = re.findall(r'<a href="/vms/([0-9a-f-]+)/">', cpu.group(0))
    assert names == [str(vms[i].uuid) for i in (6, 5, 4, 3, 2)]
    net = re.search(r'data-top="network">.*?</div>', card, re.S)
    assert net is not None and re.findall(r'<a href="/vms/([0-9a-f-]+)/">', net.group(0))[0] == str(vms[0].uuid)
    # one read for the host's running VMs, one for the VMs the page lists: not one per VM
    assert len(asked) == 2 and set(asked[0]) >= set(samples)

    # a user's list shows the usage of their running VMs
    html = session(owner).get("/").content.decode()
    assert "CPU 60 %" in html and "6 MiB used" in html


def test_a_store_that_does_not_answer_leaves_dashes(staff, test_host, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.dashboard import selectors

    def down(*args: object) -> object:
        raise ConnectionError("Redis does not answer")

    monkeypatch.setattr(selectors, "monitoring", SimpleNamespace(latest_for=down, host_latest=down))
    r = session(staff).get("/")
    assert r.status_code == 200
    card = host_block(r.content.decode(), test_host.name)
    assert figures(card, "cpus-used") == [] and "No usage samples" in card


def test_the_collectors_samples_reach_the_dashboard(staff, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    """The real collector (kvmweb.monitoring) samples the test driver twice into the store: the host's "used now"
    and the busiest VMs show its figures, and a user's running VM its CPU."""
    from kvmweb.monitoring.collector import Collector
    from kvmweb.monitoring.selectors import host_latest, latest_for

    on = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(name=unique_name("sampled")))
    services.vm_start(actor=owner, vm=on)
    collector = Collector(test_host.uri, test_host.pk, interval=5)
    collector.sample_once()
    collector.sample_once()
    host = host_latest(test_host.pk)
    vm = latest_for([str(on.uuid)])[str(on.uuid)]
    assert host is not None and vm.cpu_pct is not None
    card = host_block(session(staff).get("/").content.decode(), test_host.name)
    # the test driver's host CPU counters stand still: no host CPU % (a dash), but its memory is sampled
    assert figures(card, "cpus-used") == ([] if host.cpu_pct is None else [f"{host.cpu_pct:.1f}"])
    assert 'class="dash-sampled"' in card
    cpu = re.search(r'data-top="cpu">.*?</div>', card, re.S)
    assert cpu is not None and f'<a href="/vms/{on.uuid}/">{on.name}</a>' in cpu.group(0)
    assert "No usage samples" not in card
    mine = session(owner).get("/").content.decode()
    assert f"CPU {vm.cpu_pct:.0f} %" in mine


def test_the_api_says_what_the_page_shows(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    mine = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(vcpus=2))
    theirs = services.vm_define(actor=other_user, host=test_host, doc=spec_testdrv())
    Quota.objects.create(user=owner, max_vms=2)
    body = session(owner).get("/api/v1/dashboard/", HTTP_ACCEPT="application/json").json()
    assert [v["uuid"] for v in body["vms"]["list"]] == [str(mine.uuid)] and body["vms"]["states"] == {"shutoff": 1}
    assert body["quota"]["vms"] == {"used": 1, "limit": 2} and body["quota"]["vcpus"] == {"used": 2, "limit": None}
    assert body["hosts"] is None
    staff_body = session(staff).get("/api/v1/dashboard/", HTTP_ACCEPT="application/json").json()
    assert staff_body["quota"] is None
    assert {str(mine.uuid), str(theirs.uuid)} <= {v["uuid"] for v in staff_body["vms"]["list"]}
    (host,) = [h for h in staff_body["hosts"] if h["name"] == test_host.name]
    truth = libvirt_says(test_host.uri)
    assert host["available"] and host["cpus"]["capacity"] == truth["cpus"]
    assert host["cpus"]["allocated"] == truth["vcpus"] and host["memory_bytes"]["allocated"] == truth["max_memory"]
    assert host["cpus"]["used"] is None and host["pools"][0]["capacity"] == truth["pool_capacity"]
    assert Client().get("/api/v1/dashboard/", HTTP_ACCEPT="application/json").status_code in (401, 403)


def test_a_persons_vms_cost_one_libvirt_call_per_host_however_many(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb import hypervisor as hv
    from kvmweb.dashboard.selectors import my_vms

    conn = hv.registry.connection(test_host.uri)
    counts = []
    for _ in range(2):
        for _ in range(3):
            services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
        before = conn.calls
        found = my_vms(actor=owner)
        counts.append((conn.calls - before, found.total))
    assert counts == [(1, 3), (1, 6)]
