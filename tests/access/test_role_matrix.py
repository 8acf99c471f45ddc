"""The permission matrix with roles: {anonymous, other user, viewer, operator, manager, owner, staff} × every URL of
a VM (pages and API, taken from the URL configuration like test_permission_matrix.py) × every HTTP method, and the
events socket.

Each cell is asserted:
- allowed → the expected 2xx/3xx answer, and the effect (the ok audit entry the change writes; a read changes
  nothing);
- refused → 302 to the login page or 401/403 (anonymous), 404 (who may not see the VM: it looks missing), 403 (a role
  too low) — and no effect: the domain's definition, live XML, state and autostart, the VM's shares, the pool's
  volumes, the jobs and the audit log are exactly as before;
- a method an endpoint does not offer → 405 for everyone (or the login redirect), and no effect.

A VM URL this file has no row for makes :func:`test_every_vm_url_has_a_row` fail: no endpoint ships unchecked.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import NEEDS, VmAction, VmRole
from kvmweb.audit.models import AuditEntry
from kvmweb.jobs.models import Job
from kvmweb.machines import services
from kvmweb.machines.models import VirtualMachine, VmShare
from kvmweb.media.models import IsoImage
from kvmweb.networks.models import AllowedNetwork
from kvmweb.storage.models import PoolAccess
from tests.access.test_permission_matrix import ENDPOINTS, Endpoint
from tests.conftest import spec_testdrv, unique_name

pytestmark = pytest.mark.django_db

VIEW, OPERATE, MANAGE, DELETE, SHARE = (VmAction.VIEW, VmAction.OPERATE, VmAction.MANAGE, VmAction.DELETE,
                                        VmAction.SHARE)
POOL = "default-pool"  # the test driver's pool
ISO = "/isos/kvmweb-role-matrix.iso"
MAC = "52:54:00:4b:00:01"
SNAPSHOT = "matrix-snap"  # the snapshot every world's VM has


@dataclass(frozen=True)
class Ctx:
    """What a cell's request may need: the VM, carol's share of it, the library ISO."""

    vm: VirtualMachine
    share_id: int
    iso_id: int
    snapshot: str = SNAPSHOT


@dataclass(frozen=True)
class Cell:
    action: VmAction  # the least the actor must be allowed
    data: Callable[[Ctx], dict[str, Any]] | None = None  # the request's body
    running: bool = False  # the VM runs before the request
    audit: str | None = None  # the action of the ok audit entry an allowed request writes (None: a read)
    ok: tuple[int, ...] = (200,)  # what an allowed request answers
    pk: bool = False  # the URL's pk is carol's share
    driver: bool = True  # the test driver can make the change (False: it lacks attach/detach/update-device, resize)
    least: VmRole | None = None  # the least role, where it is not the action's (moving a VM: staff)


def _page_post(audit: str, action: VmAction = OPERATE, **kw: Any) -> Cell:
    """A page's POST: redirects back with a message."""
    return Cell(action, audit=audit, ok=(302,), **kw)


def _new_volume(_ctx: Ctx) -> dict[str, Any]:
    return {"new": "on", "pool": POOL, "volume": unique_name("matrix"), "size": "1M", "format": "qcow2",
            "bus": "virtio"}


# (url name, method) → the cell. Every VM URL and every method it offers has a row.
CELLS: dict[tuple[str, str], Cell] = {
    # the VM page, its parts, its actions
    ("machines:detail", "get"): Cell(VIEW),
    **{(f"machines:part-{p}", "get"): Cell(VIEW)
       for p in ("header", "overview", "console", "activity", "advanced", "sharing", "guest")},
    ("machines:start", "post"): _page_post("vm.start"),
    ("machines:shutdown", "post"): _page_post("vm.shutdown", running=True),
    ("machines:reboot", "post"): _page_post("vm.reboot", running=True),
    ("machines:force-off", "post"): _page_post("vm.force_off", running=True),
    ("machines:autostart-on", "post"): _page_post("vm.autostart_on"),
    ("machines:autostart-off", "post"): _page_post("vm.autostart_off"),
    ("machines:delete", "get"): Cell(DELETE),
    ("machines:delete", "post"): _page_post("vm.delete", DELETE, data=lambda c: {"confirm": "on"}),
    ("machines:share-add", "post"): _page_post("vm.share", SHARE, data=lambda c: {"user": "dave", "role": "viewer"}),
    ("machines:share-change", "post"): _page_post("vm.share", SHARE, data=lambda c: {"role": "manager"}, pk=True),
    ("machines:share-remove", "post"): _page_post("vm.unshare", SHARE, pk=True),
    ("api:vm-detail", "get"): Cell(VIEW),
    ("api:vm-stats", "get"): Cell(VIEW),
    ("api:vm-guest", "get"): Cell(VIEW),
    ("api:vm-detail", "delete"): Cell(DELETE, audit="vm.delete"),
    ("api:vm-start", "post"): Cell(OPERATE, audit="vm.start"),
    ("api:vm-shutdown", "post"): Cell(OPERATE, audit="vm.shutdown", running=True),
    ("api:vm-reboot", "post"): Cell(OPERATE, audit="vm.reboot", running=True),
    ("api:vm-force-off", "post"): Cell(OPERATE, audit="vm.force_off", running=True),
    ("api:vm-autostart", "post"): Cell(OPERATE, audit="vm.autostart_on", data=lambda c: {"enabled": True}),
    ("api:vm-shares", "get"): Cell(SHARE),
    ("api:vm-shares", "post"): Cell(SHARE, audit="vm.share", data=lambda c: {"user": "dave", "role": "operator"},
                                    ok=(201,)),
    ("api:vm-share", "patch"): Cell(SHARE, audit="vm.share", data=lambda c: {"role": "manager"}, pk=True),
    ("api:vm-share", "delete"): Cell(SHARE, audit="vm.unshare", pk=True),
    # disks and CD-ROM drives: media are the operator's, the drives themselves the manager's
    ("storage:vm-disks", "get"): Cell(VIEW),
    ("storage:vm-disk-attach", "post"): _page_post("vm.disk_attach", MANAGE, data=_new_volume, driver=False),
    ("storage:vm-disk-detach", "post"): _page_post("vm.disk_detach", MANAGE, data=lambda c: {"target": "vdb"}, driver=False),
    ("storage:vm-disk-resize", "post"): _page_post("volume.resize", MANAGE,
                                                    data=lambda c: {"target": "vdb", "size": "+1M"}, driver=False),
    ("storage:vm-disk-bus", "post"): _page_post("vm.disk_bus", MANAGE, data=lambda c: {"target": "vdb", "bus": "sata"}),
    ("storage:vm-cdrom", "post"): _page_post("vm.cdrom_insert", OPERATE,
                                             data=lambda c: {"target": "sda", "iso": f"lib:{c.iso_id}"}, driver=False),
    ("storage:vm-cdrom-add", "post"): _page_post("vm.cdrom_add", MANAGE, data=lambda c: {"iso": "", "bus": "sata"}),
    ("storage:vm-cdrom-remove", "post"): _page_post("vm.cdrom_remove", MANAGE, data=lambda c: {"target": "sda"}),
    ("storage:vm-boot-order", "post"): _page_post("vm.boot_order", MANAGE,
                                                  data=lambda c: {"first": "cdrom", "second": "hd"}),
    ("storage:vm-clone", "get"): Cell(MANAGE),
    ("storage:vm-clone", "post"): _page_post("vm.clone_full", MANAGE,
                                             data=lambda c: {"name": unique_name("clone"), "mode": "full"}),
    ("api:vm-disks", "get"): Cell(VIEW),
    ("api:vm-disks", "post"): Cell(MANAGE, audit="vm.disk_attach", data=lambda c: {**_new_volume(c), "new": True},
                                   ok=(201,), driver=False),
    ("api:vm-disk-detach", "post"): Cell(MANAGE, audit="vm.disk_detach", data=lambda c: {"target": "vdb"}, driver=False),
    ("api:vm-disk-resize", "post"): Cell(MANAGE, audit="volume.resize", data=lambda c: {"target": "vdb", "size": "+1M"}, driver=False),
    ("api:vm-disk-bus", "post"): Cell(MANAGE, audit="vm.disk_bus", data=lambda c: {"target": "vdb", "bus": "sata"}),
    ("api:vm-cdrom", "post"): Cell(OPERATE, audit="vm.cdrom_insert", data=lambda c: {"target": "sda", "iso": c.iso_id}, driver=False),
    ("api:vm-cdrom-add", "post"): Cell(MANAGE, audit="vm.cdrom_add", data=lambda c: {"bus": "sata"}, ok=(201,)),
    ("api:vm-cdrom-remove", "post"): Cell(MANAGE, audit="vm.cdrom_remove", data=lambda c: {"target": "sda"}),
    ("api:vm-boot-order", "post"): Cell(MANAGE, audit="vm.boot_order", data=lambda c: {"order": ["cdrom", "hd"]}),
    ("api:vm-clone", "post"): Cell(MANAGE, audit="vm.clone_full", data=lambda c: {"name": unique_name("clone")},
                                   ok=(202,)),
    # a private template of the VM's disk: the manager's (like a clone)
    ("templates:from-vm", "get"): Cell(MANAGE),
    ("templates:from-vm", "post"): _page_post("vm.template", MANAGE, data=lambda c: {"name": unique_name("tpl")}),
    ("api:vm-template", "post"): Cell(MANAGE, audit="vm.template", data=lambda c: {"name": unique_name("tpl")},
                                      ok=(202,)),
    # backups: everyone who sees the VM sees its list; backing up (and restoring, deleting: the backup URLs in
    # test_permission_matrix.py and tests/protection) is the manager's
    ("protection:vm-backups", "get"): Cell(VIEW),
    ("protection:vm-backup-create", "post"): _page_post("vm.backup", MANAGE),
    ("api:vm-backups", "get"): Cell(VIEW),
    ("api:vm-backups", "post"): Cell(MANAGE, audit="vm.backup", ok=(202,)),
    # network interfaces: the manager's
    ("networks:vm-nics", "get"): Cell(VIEW),
    ("networks:vm-nic-add", "post"): _page_post("vm.nic_attach", MANAGE,
                                                data=lambda c: {"network": "default", "model": "virtio"}, driver=False),
    ("networks:vm-nic-remove", "post"): _page_post("vm.nic_detach", MANAGE, data=lambda c: {"mac": MAC}, driver=False),
    ("networks:vm-nic-link-down", "post"): _page_post("vm.nic_link_down", MANAGE, data=lambda c: {"mac": MAC}, driver=False),
    ("networks:vm-nic-link-up", "post"): _page_post("vm.nic_link_up", MANAGE, data=lambda c: {"mac": MAC}, driver=False),
    ("api:vm-nic-list", "get"): Cell(VIEW),
    ("api:vm-nic-list", "post"): Cell(MANAGE, audit="vm.nic_attach", data=lambda c: {"network": "default"}, ok=(201,), driver=False),
    ("api:vm-nic-detach", "post"): Cell(MANAGE, audit="vm.nic_detach", data=lambda c: {"mac": MAC}, driver=False),
    ("api:vm-nic-link", "post"): Cell(MANAGE, audit="vm.nic_link_down", data=lambda c: {"mac": MAC, "up": False}, driver=False),
    # consoles: everyone who may see the VM may watch it (the proxy drops a viewer's input: tests/console)
    # snapshots: the manager's (each change queues a job; the URL's name is the world's snapshot)
    ("protection:vm-snapshots", "get"): Cell(VIEW),
    # moving to another host: staff only (KVMWEB_MIGRATION_BY_OWNERS off); the test driver is the only host, so
    # staff's request is refused by placement (409, nothing changed) — real moves: tests/fleet/test_migration_real.py
    ("fleet:vm-move", "get"): Cell(VIEW),
    ("fleet:vm-move-start", "post"): Cell(VIEW, least=VmRole.STAFF, ok=(302,), data=lambda c: {"host": "any"}),
    ("api:vm-migrate", "post"): Cell(VIEW, least=VmRole.STAFF, ok=(409,), data=lambda c: {"host": "any"}),
    ("protection:vm-snapshot-create", "post"): _page_post("vm.snapshot_create", MANAGE,
                                                          data=lambda c: {"name": "matrix-new", "description": "d"}),
    ("protection:vm-snapshot-revert", "post"): _page_post("vm.snapshot_revert", MANAGE, data=lambda c: {"confirm": "on"}),
    ("protection:vm-snapshot-delete", "post"): _page_post("vm.snapshot_delete", MANAGE,
                                                          data=lambda c: {"children": "on"}),
    ("api:vm-snapshots", "get"): Cell(VIEW),
    ("api:vm-snapshots", "post"): Cell(MANAGE, audit="vm.snapshot_create", data=lambda c: {"name": "matrix-new"},
                                       ok=(202,)),
    ("api:vm-snapshot", "get"): Cell(VIEW),
    ("api:vm-snapshot", "delete"): Cell(MANAGE, audit="vm.snapshot_delete", ok=(202,)),
    ("api:vm-snapshot-revert", "post"): Cell(MANAGE, audit="vm.snapshot_revert", data=lambda c: {"confirm": True},
                                             ok=(202,)),
    ("console:vnc", "get"): Cell(VIEW),
    ("console:text", "get"): Cell(VIEW),
    ("console:screenshot", "get"): Cell(VIEW, running=True),
    ("api:console-token", "post"): Cell(VIEW, running=True, ok=(200, 201)),
}

ACTORS = ("anonymous", "other", "viewer", "operator", "manager", "owner", "staff")
ROLES = {"anonymous": VmRole.NONE, "other": VmRole.NONE, "viewer": VmRole.VIEWER, "operator": VmRole.OPERATOR,
         "manager": VmRole.MANAGER, "owner": VmRole.OWNER, "staff": VmRole.STAFF}
METHODS = ("get", "post", "put", "patch", "delete")
VM_URLS = [e for e in ENDPOINTS if "uuid" in e.kwargs]


def test_every_vm_url_has_a_row() -> None:
    names = {e.name for e in VM_URLS}
    assert not {n for n, _m in CELLS} - names, "rows for URLs that no longer exist"
    missing = names - {n for n, _m in CELLS}
    assert not missing, f"teach tests/access/test_role_matrix.py who may use {sorted(missing)}"


# ------------------------------------------------------------------------------------------------ the world
@pytest.fixture
def people(django_user_model, owner, other_user, staff):  # type: ignore[no-untyped-def]
    make = django_user_model.objects.create_user
    return {"owner": owner, "bob": other_user, "staff": staff,
            "carol": make(username="carol", password="carol-pass-123"),
            "dave": make(username="dave", password="dave-pass-1234")}


@pytest.fixture
def opened(test_host):  # type: ignore[no-untyped-def]
    """What users may use on the test host: its pool, its "default" network, a medium of the ISO library."""
    PoolAccess.objects.update_or_create(host=test_host, pool=POOL, defaults={"everyone": True})
    AllowedNetwork.objects.get_or_create(host=test_host, name="default")
    return IsoImage.objects.create(host=test_host, name="matrix.iso", path=ISO, size=1, complete=True).pk


def _world(test_host, people, iso_id: int, *, role: str | None, running: bool) -> Ctx:  # type: ignore[no-untyped-def]
    """alice's VM: a disk (a volume of the pool), an empty CD-ROM drive, a NIC, a VNC display; shared with carol as
    viewer, and with bob as ``role``."""
    conn = hv.registry.connection(test_host.uri)
    volume = hv.pool_lookup(conn, POOL).create_volume(hv.VolumeSpec(name=unique_name("disk"), capacity=1 << 20,
                                                                    format="qcow2"))
    doc = spec_testdrv(devices=(
        hv.Disk.new(target="vdb", source=volume.path), hv.Disk.new(target="sda", device="cdrom", bus="sata"),
        hv.Interface.new(network="default", mac=MAC), hv.Graphics.vnc()))
    vm = services.vm_define(actor=people["owner"], host=test_host, doc=doc)
    share = services.vm_share(actor=people["owner"], vm=vm, user=people["carol"], role="viewer")
    if role is not None:
        services.vm_share(actor=people["owner"], vm=vm, user=people["bob"], role=role)
    dom = hv.domain_lookup(conn, str(vm.uuid))
    hv.snapshot_create(dom, hv.SnapshotSpec.new(name=SNAPSHOT, memory=False))
    if running:
        services.vm_start(actor=people["owner"], vm=vm)
    assert share.share_id is not None
    return Ctx(vm=vm, share_id=share.share_id, iso_id=iso_id)


def _actor(name: str, people: dict[str, Any]) -> tuple[Any, str | None]:
    """The user behind a matrix column, and bob's role for the shared columns."""
    if name in ("viewer", "operator", "manager"):
        return people["bob"], name
    return {"anonymous": None, "other": people["dave"], "owner": people["owner"], "staff": people["staff"]}[name], None


def _snapshot(ctx: Ctx) -> dict[str, Any]:
    """Everything a request to a VM URL could change."""
    conn = hv.registry.connection(ctx.vm.host.uri)
    try:
        dom = hv.domain_lookup(conn, str(ctx.vm.uuid))
        domain: tuple[Any, ...] = (dom.definition().to_xml(), dom.xml(), dom.state(), dom.info().autostart,
                                   [(s.name, s.current) for s in hv.snapshot_list(dom)])
    except hv.DomainNotFound:
        domain = ()
    return {
        "domain": domain,
        "record": VirtualMachine.objects.filter(pk=ctx.vm.pk).exists(),
        "shares": sorted(VmShare.objects.filter(vm_id=ctx.vm.pk).values_list("user_id", "group_id", "role")),
        "volumes": sorted(v.name for v in hv.pool_lookup(conn, POOL).volumes()),
        "domains": sorted(d.name for d in hv.domain_list(conn, sizes=False)),
        "jobs": Job.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def _request(user: Any, endpoint: Endpoint, method: str, ctx: Ctx, cell: Cell | None) -> Any:
    values = {"uuid": ctx.vm.uuid, "pk": ctx.share_id, "name": ctx.snapshot}
    url = endpoint.url(values)
    data = cell.data(ctx) if cell and cell.data else {}
    if endpoint.is_api:
        api = APIClient()
        if user is not None:
            api.force_authenticate(user)
        return url, getattr(api, method)(url, data, format="json")
    client = Client()
    if user is not None:
        client.force_login(user)
    return url, getattr(client, method)(url, data)


def _expected_refusal(actor: str, endpoint: Endpoint, response: Any, url: str) -> None:
    if actor == "anonymous":
        if endpoint.is_api:
            assert response.status_code in (401, 403), (url, response.status_code)
        else:
            assert response.status_code == 302 and "login" in response["Location"], (url, response.status_code)
        return
    expected = 404 if ROLES[actor] == VmRole.NONE else 403
    assert response.status_code == expected, (url, actor, response.status_code, response.content[:300])
    if endpoint.is_api:
        assert response.json()["error"] == ("not_found" if expected == 404 else "permission_denied")


CASES = [(e, m) for e in VM_URLS for m in METHODS if (e.name, m) in CELLS]
NOT_OFFERED = [(e, m) for e in VM_URLS for m in METHODS if (e.name, m) not in CELLS]


@pytest.mark.parametrize("endpoint, method", NOT_OFFERED, ids=[f"{e.name}:{m}" for e, m in NOT_OFFERED])
def test_methods_not_offered(endpoint: Endpoint, method: str, people, opened, test_host) -> None:  # type: ignore[no-untyped-def]
    """A method a VM URL does not offer: 405 for every actor (anonymous: the login redirect or 401/403), and no
    effect. One world for the seven actors (bob's share takes each role in turn): these cells do not depend on it."""
    ctx = _world(test_host, people, opened, role="viewer", running=False)
    for actor in ACTORS:
        user, role = _actor(actor, people)
        if role is not None:
            VmShare.objects.filter(vm=ctx.vm, user=people["bob"]).update(role=role)
        before = _snapshot(ctx)
        url, response = _request(user, endpoint, method, ctx, None)
        if actor == "anonymous" and not endpoint.is_api and response.status_code == 302:
            assert "login" in response["Location"]
        else:
            assert response.status_code in ((401, 403, 405) if actor == "anonymous" else (405,)), \
                (url, method, actor, response.status_code)
        assert _snapshot(ctx) == before, (url, method, actor, "changed something")


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("endpoint, method", CASES, ids=[f"{e.name}:{m}" for e, m in CASES])
def test_cell(endpoint: Endpoint, method: str, actor: str, people, opened, test_host) -> None:  # type: ignore[no-untyped-def]
    cell = CELLS[(endpoint.name, method)]
    user, role = _actor(actor, people)
    ctx = _world(test_host, people, opened, role=role, running=cell.running)
    before = _snapshot(ctx)
    url, response = _request(user, endpoint, method, ctx, cell)
    least = cell.least or NEEDS[cell.action]
    if ROLES[actor] >= least and not cell.driver:
        # Past the permission check into libvirt, where the test driver cannot change devices: the failure is the
        # driver's, audited as such, and undone. The effect is proven on a real guest (tests/access/test_roles_real.py,
        # tests/storage, tests/networks).
        assert response.status_code == (400 if endpoint.is_api else 302), (url, method, actor, response.status_code)
        failed = AuditEntry.objects.filter(action=cell.audit, ok=False, pk__gt=_last_audit(before)).first()
        assert failed is not None and "not supported by the connection driver" in failed.detail, (url, actor)
        assert failed.actor == user
        after = _snapshot(ctx)
        assert {k: v for k, v in after.items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
        return
    if ROLES[actor] >= least:
        assert response.status_code in cell.ok, (url, method, actor, response.status_code, response.content[:500])
        if cell.audit is None:
            assert _snapshot(ctx) == before, (url, method, actor, "a read changed something")
        else:
            done = AuditEntry.objects.filter(action=cell.audit, ok=True, pk__gt=_last_audit(before)).first()
            assert done is not None, (url, method, actor, f"no ok {cell.audit} entry",
                                      list(AuditEntry.objects.order_by("-pk").values_list("action", "ok",
                                                                                          "detail")[:3]))
            assert done.actor == user
        return
    _expected_refusal(actor, endpoint, response, url)
    assert _snapshot(ctx) == before, (url, method, actor, "a refused request changed something")


def _last_audit(snapshot: dict[str, Any]) -> int:
    """The pk of the newest audit entry when ``snapshot`` was taken (entries only grow)."""
    return AuditEntry.objects.order_by("pk").values_list("pk", flat=True)[snapshot["audit"] - 1] \
        if snapshot["audit"] else 0


# ------------------------------------------------------------------------------------------------ bulk actions
@pytest.mark.parametrize("actor", ACTORS[1:])
def test_bulk_actions_follow_the_roles(actor: str, people, opened, test_host) -> None:  # type: ignore[no-untyped-def]
    user, role = _actor(actor, people)
    ctx = _world(test_host, people, opened, role=role, running=False)
    api = APIClient()
    api.force_authenticate(user)
    body = api.post("/api/v1/vms/bulk/", {"action": "start", "uuids": [str(ctx.vm.uuid)]}, format="json").json()
    (item,) = body["results"]
    state = hv.domain_lookup(hv.registry.connection(test_host.uri), str(ctx.vm.uuid)).state()
    if ROLES[actor] >= VmRole.OPERATOR:
        assert item["ok"] and state == hv.DomainState.RUNNING
    else:
        assert not item["ok"] and state == hv.DomainState.SHUTOFF
        assert item["detail"] == ("No such virtual machine." if actor == "other" else
                                  "You may not operate this virtual machine: your role on it is viewer.")


# ------------------------------------------------------------------------------------------------ lists and roles
@pytest.mark.parametrize("actor", ACTORS)
def test_lists_show_shared_vms_with_the_readers_role(actor: str, people, opened, test_host) -> None:  # type: ignore[no-untyped-def]
    user, role = _actor(actor, people)
    ctx = _world(test_host, people, opened, role=role, running=False)
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    response = api.get("/api/v1/vms/?limit=1000")
    if actor == "anonymous":
        assert response.status_code in (401, 403)
        return
    rows = {r["uuid"]: r for r in response.json()["results"]}
    if ROLES[actor] == VmRole.NONE:
        assert str(ctx.vm.uuid) not in rows
        return
    assert rows[str(ctx.vm.uuid)]["your_role"] == ROLES[actor].label
    assert api.get(f"/api/v1/vms/{ctx.vm.uuid}/").json()["your_role"] == ROLES[actor].label
    client = Client()
    client.force_login(user)
    page = client.get("/vms/").content.decode()
    assert ctx.vm.name in page
    assert (f"your role: {role}" in page) == (role is not None)


# ------------------------------------------------------------------------------------------------ the events socket
@pytest.fixture
def in_memory_layer(settings):  # type: ignore[no-untyped-def]
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("actor", ACTORS)
def test_events_reach_only_who_may_see(actor: str, people, opened, test_host, in_memory_layer) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import AnonymousUser
    from channels.testing import WebsocketCommunicator

    from kvmweb.events.consumers import EventsConsumer
    from kvmweb.machines.events import vm_event_publish
    from tests.events.test_events import published, run_async

    user, role = _actor(actor, people)
    ctx = _world(test_host, people, opened, role=role, running=False)
    event = hv.DomainEvent(test_host.uri, str(ctx.vm.uuid), ctx.vm.name, "started", 0, hv.DomainState.RUNNING)
    if user is None:
        async def anonymous() -> bool:
            comm = WebsocketCommunicator(EventsConsumer.as_asgi(), "/ws/events/")
            comm.scope["user"] = AnonymousUser()
            connected, _ = await comm.connect()
            return bool(connected)

        assert not run_async(anonymous)
        vm_event_publish(event, test_host)  # nobody to hear it; it must not fail either
        return
    (got,) = published(event, test_host, user)
    if ROLES[actor] == VmRole.NONE:
        assert got is None
    else:
        assert got is not None and got["uuid"] == str(ctx.vm.uuid) and got["state"] == "running"

