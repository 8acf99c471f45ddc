"""Real (qemu:///system): what each shared role may do with a real guest, through the REST API and the pages.

One memtest86+ guest (TCG, 96 MiB, a CD-ROM drive with memtest86+ and a small qcow2 disk), owned by alice, is shared
with bob (directly) and with the group of dave (dave authenticates with a real API token), both as viewers; carol
has no role at all. The issue's requirement — "a viewer cannot start, stop, force off, change media or delete" — is
proven with libvirt itself as the oracle, through a connection of this test (not the portal's):

1. shut off, then running: every change a viewer or a stranger could try (force off, shut down (also with a
   deadline, which would be a job), reboot, start, autostart, change or eject the CD-ROM medium, delete with and
   without disks, clone, add a disk, share) answers 403 with the API's JSON for the viewers and 404 for carol, on
   the API and on the page actions; and nothing changed: the domain's state, ID, live and inactive XML
   (``XMLDesc(VIR_DOMAIN_XML_SECURE)``, with ``INACTIVE``), autostart, the pool's volumes, the domains, the VM's
   record and shares, the jobs, and the audit log (the portal writes no audit entry for a refused request: the
   role check comes before the audited block);
2. bob made operator: CD-ROM media change and eject, autostart, force off and start work (libvirt shows each);
   delete, clone and add-disk stay 403 and change nothing; the group made operator lets dave force off;
3. bob made manager: adding a 1 MiB disk to the shut-off guest works (the volume and the disk are in libvirt);
   delete stays 403;
4. alice, the owner, deletes it with its volumes.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import libvirt
import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from kvmweb.accounts.tokens import token_create
from kvmweb.audit.models import AuditEntry
from kvmweb.jobs.models import Job
from kvmweb.machines import services
from kvmweb.machines.models import VirtualMachine, VmShare
from kvmweb.media.services import iso_register
from kvmweb.storage.models import PoolAccess
from tests.conftest import MEMTEST_ISO, PREFIX, SYSTEM, memtest_spec, unique_name, virsh

pytestmark = pytest.mark.real

OTHER_ISO = "/usr/lib/memtest86+/memtest86+ia32.iso"  # a second medium to change to
SECURE = libvirt.VIR_DOMAIN_XML_SECURE
INACTIVE = libvirt.VIR_DOMAIN_XML_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE


@dataclass(frozen=True)
class World:
    vm: VirtualMachine
    pool: str
    disk: str  # the guest's qcow2 disk (a volume of the pool)
    memtest_id: int  # the ISO library's media
    other_id: int
    group_share: int  # the pk of the share with dave's group


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def virt() -> Iterator[libvirt.virConnect]:
    """The oracle: a libvirt connection of the test's own, not the portal's."""
    conn = libvirt.open(SYSTEM)
    yield conn
    conn.close()


@pytest.fixture
def people(django_user_model, owner, other_user, staff):  # type: ignore[no-untyped-def]
    make = django_user_model.objects.create_user
    return {"alice": owner, "bob": other_user, "staff": staff,
            "carol": make(username="carol", password="carol-pass-123"),
            "dave": make(username="dave", password="dave-pass-1234")}


@pytest.fixture
def world(people, qemu_host, test_pool, make_volume, real_vm) -> World:  # type: ignore[no-untyped-def]
    """alice's memtest86+ guest (shut off), shared with bob and with dave's group as viewers. The test pool is open
    to alice and bob, so what stops bob below is his role only."""
    access = PoolAccess.objects.create(host=qemu_host, pool=test_pool["name"])
    access.users.add(people["alice"], people["bob"])
    memtest = iso_register(actor=people["staff"], host=qemu_host, path=MEMTEST_ISO, name="memtest86+x64.iso")
    other = iso_register(actor=people["staff"], host=qemu_host, path=OTHER_ISO, name="memtest86+ia32.iso")
    disk = make_volume(size="16M")
    vm = real_vm(memtest_spec(name=unique_name("roles"), disk=disk))
    services.vm_share(actor=people["alice"], vm=vm, user=people["bob"], role="viewer")
    group = Group.objects.create(name="rr-watchers")
    people["dave"].groups.add(group)
    share = services.vm_share(actor=people["alice"], vm=vm, group=group, role="viewer")
    assert share.share_id is not None
    return World(vm=vm, pool=test_pool["name"], disk=disk, memtest_id=memtest.pk, other_id=other.pk,
                 group_share=share.share_id)


# ------------------------------------------------------------------------------------------------ clients
def api_session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def api_token(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(actor=user, name='roles').secret}")
    return client


def pages(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ------------------------------------------------------------------------------------------------ what to try
def api_attempts(w: World) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(what, method, URL, JSON body): every change the API offers that a viewer must not make."""
    vm = f"/api/v1/vms/{w.vm.uuid}/"
    return [
        ("force off", "post", vm + "force-off/", None),
        ("shut down", "post", vm + "shutdown/", None),
        ("shut down, forced off after 5 s (a job)", "post", vm + "shutdown/", {"force_after": 5}),
        ("reboot", "post", vm + "reboot/", None),
        ("start", "post", vm + "start/", None),
        ("autostart on", "post", vm + "autostart/", {"enabled": True}),
        ("change the CD-ROM medium", "post", vm + "cdrom/", {"target": "sda", "iso": w.other_id}),
        ("eject the CD-ROM medium", "post", vm + "cdrom/", {"target": "sda"}),
        ("delete", "delete", vm + "?delete_volumes=false", None),
        ("delete with its disks", "delete", vm + "?delete_volumes=true", None),
        ("clone", "post", vm + "clone/", {"name": unique_name("clone")}),
        ("add a disk", "post", vm + "disks/",
         {"new": True, "pool": w.pool, "volume": f"{unique_name('new')}.qcow2", "size": "1M"}),
        ("share", "post", vm + "shares/", {"user": "carol", "role": "operator"}),
    ]


def page_attempts(w: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(what, method, URL, form data): the same through the pages' actions."""
    def url(name: str) -> str:
        return reverse(name, kwargs={"uuid": w.vm.uuid})

    return [
        *[(action, "post", url(f"machines:{action}"), {})
          for action in ("force-off", "shutdown", "reboot", "start", "autostart-on")],
        ("delete page", "get", url("machines:delete"), {}),
        ("delete", "post", url("machines:delete"), {"confirm": "on", "delete_volumes": "on"}),
        ("change the CD-ROM medium", "post", url("storage:vm-cdrom"), {"target": "sda", "iso": f"lib:{w.other_id}"}),
        ("clone", "post", url("storage:vm-clone"), {"name": unique_name("clone"), "mode": "full"}),
        ("add a disk", "post", url("storage:vm-disk-attach"),
         {"new": "on", "pool": w.pool, "volume": f"{unique_name('new')}.qcow2", "size": "1M", "format": "qcow2",
          "bus": "virtio"}),
    ]


# ------------------------------------------------------------------------------------------------ the oracle
def snapshot(virt: libvirt.virConnect, w: World) -> dict[str, Any]:
    """Everything a refused request could have changed, read from libvirt (and the portal's own records)."""
    try:
        dom = virt.lookupByUUIDString(str(w.vm.uuid))
        domain: dict[str, Any] = {"state": dom.state()[0], "id": dom.ID(), "live": dom.XMLDesc(SECURE),
                                  "inactive": dom.XMLDesc(INACTIVE), "autostart": dom.autostart()}
    except libvirt.libvirtError:
        domain = {}
    pool = virt.storagePoolLookupByName(w.pool)
    pool.refresh(0)
    return {
        "domain": domain,
        "volumes": sorted(pool.listVolumes()),
        "domains": sorted(d.name() for d in virt.listAllDomains() if d.name().startswith(PREFIX)),
        "record": VirtualMachine.objects.filter(pk=w.vm.pk).exists(),
        "shares": list(VmShare.objects.filter(vm_id=w.vm.pk).order_by("pk").values_list("user_id", "group_id", "role")),
        "jobs": sorted(Job.objects.values_list("pk", flat=True)),
        "audit": sorted(AuditEntry.objects.values_list("pk", flat=True)),
    }


def refused_everything(virt: libvirt.virConnect, w: World, who: str, api: APIClient, page: Client,
                       status: int) -> None:
    """Every attempt answers ``status`` (403: a role too low, 404: no role) and changes nothing at all."""
    code = {403: "permission_denied", 404: "not_found"}[status]
    before = snapshot(virt, w)
    assert before["domain"], "the guest must exist"
    for what, method, url, body in api_attempts(w):
        reply = getattr(api, method)(url, body, format="json") if body is not None else getattr(api, method)(url)
        assert reply.status_code == status, (who, what, reply.status_code, reply.content[:300])
        assert reply["Content-Type"].startswith("application/json"), (who, what, reply["Content-Type"])
        assert reply.json()["error"] == code and reply.json()["detail"], (who, what, reply.json())
        assert snapshot(virt, w) == before, (who, what, "a refused API request changed something")
    for what, method, url, data in page_attempts(w):
        reply = getattr(page, method)(url, data)
        assert reply.status_code == status, (who, "page", what, reply.status_code)
        assert snapshot(virt, w) == before, (who, "page", what, "a refused page action changed something")


def state(virt: libvirt.virConnect, w: World) -> int:
    return int(virt.lookupByUUIDString(str(w.vm.uuid)).state()[0])


def cdrom_source(virt: libvirt.virConnect, w: World, flags: int = SECURE) -> str | None:
    """The file in the guest's CD-ROM drive sda (live XML by default)."""
    root = ET.fromstring(virt.lookupByUUIDString(str(w.vm.uuid)).XMLDesc(flags))
    (drive,) = [d for d in root.iter("disk") if d.find("target").get("dev") == "sda"]  # type: ignore[union-attr]
    source = drive.find("source")
    return source.get("file") if source is not None else None


def ok(reply: Any, status: int = 200) -> dict[str, Any]:
    assert reply.status_code == status, (reply.status_code, reply.content[:500])
    return reply.json()  # type: ignore[no-any-return]


def last_ok_entry(action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(action=action).order_by("-pk").first()
    assert entry is not None and entry.ok, (action, entry)
    return entry


# ------------------------------------------------------------------------------------------------ the test
def test_each_role_may_exactly_what_it_allows_on_a_real_guest(virt, world, people) -> None:  # type: ignore[no-untyped-def]
    w = world
    vm = f"/api/v1/vms/{w.vm.uuid}/"
    alice = api_session(people["alice"])
    bob, bob_pages = api_session(people["bob"]), pages(people["bob"])
    dave, dave_pages = api_token(people["dave"]), pages(people["dave"])
    carol, carol_pages = api_session(people["carol"]), pages(people["carol"])

    # they see it (so a 403 below is their role, not a VM they cannot see); carol does not
    assert ok(bob.get(vm))["your_role"] == "viewer"
    assert ok(dave.get(vm))["your_role"] == "viewer"  # through the group, with a token
    assert carol.get(vm).status_code == 404

    # 1. viewers and a stranger change nothing, shut off and running
    refusers = [("bob (viewer)", bob, bob_pages, 403), ("dave (viewer through his group)", dave, dave_pages, 403),
                ("carol (no role)", carol, carol_pages, 404)]
    assert state(virt, w) == libvirt.VIR_DOMAIN_SHUTOFF
    for who, api, page, status in refusers:
        refused_everything(virt, w, f"{who}, shut off", api, page, status)
    ok(alice.post(vm + "start/"))
    assert state(virt, w) == libvirt.VIR_DOMAIN_RUNNING
    assert cdrom_source(virt, w) == MEMTEST_ISO
    for who, api, page, status in refusers:
        refused_everything(virt, w, f"{who}, running", api, page, status)
    assert virsh("domstate", w.vm.name).strip() == "running"  # virsh agrees: the guest was never stopped

    # 2. bob made operator: media, autostart, force off, start; not delete, clone, disks
    services.vm_share(actor=people["alice"], vm=w.vm, user=people["bob"], role="operator")
    ok(bob.post(vm + "cdrom/", {"target": "sda", "iso": w.other_id}, format="json"))
    assert cdrom_source(virt, w) == OTHER_ISO  # changed in the running guest
    assert last_ok_entry("vm.cdrom_insert").actor == people["bob"]
    ok(bob.post(vm + "cdrom/", {"target": "sda"}, format="json"))
    assert cdrom_source(virt, w) is None
    ok(bob.post(vm + "cdrom/", {"target": "sda", "iso": w.memtest_id}, format="json"))
    assert cdrom_source(virt, w) == MEMTEST_ISO
    ok(bob.post(vm + "autostart/", {"enabled": True}, format="json"))
    assert virt.lookupByUUIDString(str(w.vm.uuid)).autostart() == 1
    ok(bob.post(vm + "autostart/", {"enabled": False}, format="json"))
    assert virt.lookupByUUIDString(str(w.vm.uuid)).autostart() == 0
    before = snapshot(virt, w)
    for what, method, url, body in api_attempts(w):
        if what.startswith(("delete", "clone", "add a disk", "share")):
            reply = getattr(bob, method)(url, body, format="json") if body is not None else getattr(bob, method)(url)
            assert reply.status_code == 403 and reply.json()["error"] == "permission_denied", (what, reply.content)
            assert snapshot(virt, w) == before, ("operator", what, "a refused request changed something")
    first_id = virt.lookupByUUIDString(str(w.vm.uuid)).ID()
    assert ok(bob.post(vm + "force-off/"))["state"] == "shutoff"
    assert state(virt, w) == libvirt.VIR_DOMAIN_SHUTOFF
    assert virsh("domstate", w.vm.name).strip() == "shut off"
    assert last_ok_entry("vm.force_off").actor == people["bob"]
    assert ok(bob.post(vm + "start/"))["state"] == "running"
    assert state(virt, w) == libvirt.VIR_DOMAIN_RUNNING
    assert virt.lookupByUUIDString(str(w.vm.uuid)).ID() != first_id  # a new QEMU process
    # dave's group is still a viewer; made operator, dave may force off too
    assert dave.post(vm + "force-off/").status_code == 403 and state(virt, w) == libvirt.VIR_DOMAIN_RUNNING
    services.vm_share_update(actor=people["alice"], vm=w.vm, share_id=w.group_share, role="operator")
    assert ok(dave.post(vm + "force-off/"))["state"] == "shutoff"
    assert state(virt, w) == libvirt.VIR_DOMAIN_SHUTOFF
    assert last_ok_entry("vm.force_off").actor == people["dave"]

    # 3. bob made manager: a 1 MiB disk added to the shut-off guest; delete stays the owner's
    services.vm_share(actor=people["alice"], vm=w.vm, user=people["bob"], role="manager")
    volumes_before = set(virt.storagePoolLookupByName(w.pool).listVolumes())
    name = f"{unique_name('added')}.qcow2"
    target = ok(bob.post(vm + "disks/", {"new": True, "pool": w.pool, "volume": name, "size": "1M"},
                         format="json"), 201)["target"]
    pool = virt.storagePoolLookupByName(w.pool)
    assert set(pool.listVolumes()) - volumes_before == {name}
    added = pool.storageVolLookupByName(name).path()
    assert f"<source file='{added}'" in virt.lookupByUUIDString(str(w.vm.uuid)).XMLDesc(INACTIVE)
    assert f"dev='{target}'" in virt.lookupByUUIDString(str(w.vm.uuid)).XMLDesc(INACTIVE)
    before = snapshot(virt, w)
    for reply in (bob.delete(vm + "?delete_volumes=false"), bob.delete(vm + "?delete_volumes=true"),
                  bob_pages.post(reverse("machines:delete", kwargs={"uuid": w.vm.uuid}), {"confirm": "on"})):
        assert reply.status_code == 403
        assert snapshot(virt, w) == before, ("manager", "delete", "a refused delete changed something")

    # 4. the owner deletes it, with its volumes (the disk and the one bob added); the ISOs stay
    ok(alice.delete(vm + "?delete_volumes=true"))
    with pytest.raises(libvirt.libvirtError):
        virt.lookupByUUIDString(str(w.vm.uuid))
    pool.refresh(0)
    assert not {os.path.basename(w.disk), name} & set(pool.listVolumes())
    assert os.path.exists(MEMTEST_ISO) and os.path.exists(OTHER_ISO)
    assert bob.get(vm).status_code == 404
