"""Snapshots, fast: the spec and the refusals (pure), the tree, and the services, jobs and API on libvirt's test
driver (which keeps snapshot metadata like the QEMU driver, without disks to write into)."""
from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.accounts.models import Quota
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, PermissionDeniedError, ValidationError
from kvmweb.jobs.models import Job
from kvmweb.machines import services as vm_services
from kvmweb.protection import selectors, snapshots
from tests.conftest import spec_testdrv, unique_name

POOL = "default-pool"  # the test driver's pool


# ------------------------------------------------------------------------------------------------ pure
def test_spec_renders_user_text_as_text() -> None:
    spec = hv.SnapshotSpec.new(name="before-upgrade", description="<b>&'x'</b>", memory=True, disks=("vda",),
                               skip=("sda",))
    again = hv.SnapshotSpec.from_xml(spec.to_xml())
    assert again.name == "before-upgrade" and again.description == "<b>&'x'</b>"
    assert again.memory_mode == "internal"
    disks = {d.get("name"): d.get("snapshot") for d in again.element.findall("disks/disk")}
    assert disks == {"vda": "internal", "sda": "no"}
    assert hv.SnapshotSpec.new(name="off", memory=False).memory_mode == "no"


@pytest.mark.parametrize("name", ["", "a b", "../x", "-x", "x" * 65, "a/b", "x."])
def test_spec_refuses_bad_names(name: str) -> None:
    with pytest.raises(hv.InvalidRequest):
        hv.SnapshotSpec.new(name=name, memory=False)


def _doc(*disks: hv.Disk, nvram: bool = False) -> hv.DomainDocument:
    doc = spec_testdrv("refusal", devices=disks)
    if nvram:
        doc.nvram = "/var/lib/libvirt/qemu/nvram/refusal_VARS.fd"
    return doc


QCOW2 = hv.Disk.new(target="vda", source="/p/a.qcow2")
CDROM = hv.Disk.new(target="sda", device="cdrom", bus="sata", source="/isos/x.iso", format="raw", shared_media=True)


def _block() -> hv.Disk:
    disk = hv.Disk.new(target="vdb", source="/p/b.qcow2")
    disk.kind = "block"
    return disk


def _shared() -> hv.Disk:
    disk = hv.Disk.new(target="vdb", source="/p/b.qcow2")
    disk.shareable = True
    return disk


@pytest.mark.parametrize("disks, nvram, words", [
    ((QCOW2, CDROM), False, None),
    ((QCOW2, hv.Disk.new(target="sdb", device="cdrom", bus="sata")), False, None),  # an empty CD-ROM drive is fine
    ((CDROM,), False, "no disk to snapshot"),
    ((), False, "no disk to snapshot"),
    ((QCOW2, hv.Disk.new(target="vdb", source="/p/b.img", format="raw")), False, "Disk vdb is raw, not qcow2"),
    ((hv.Disk.new(target="vdb", source="/p/b", format=None),), False, "Disk vdb declares no format"),
    ((QCOW2, hv.Disk.new(target="vdb", source="/p/b.qcow2", readonly=True)), False, "Disk vdb is read-only"),
    ((QCOW2, _shared()), False, "Disk vdb is shared"),
    ((QCOW2, _block()), False, "Disk vdb is not backed by a file (it is a block disk)"),
    ((hv.Disk.new(target="vdb", source=None),), False, "Disk vdb has no source"),
    ((QCOW2,), True, "UEFI"),
])
def test_refusal_reasons(disks: tuple[hv.Disk, ...], nvram: bool, words: str | None) -> None:
    reason = hv.snapshot_refusal(_doc(*disks, nvram=nvram))
    if words is None:
        assert reason is None
    else:
        assert reason is not None and words in reason, reason


def test_a_running_vm_needs_its_memory() -> None:
    doc = _doc(QCOW2)
    assert hv.snapshot_refusal(doc, running=True, memory=True) is None
    assert hv.snapshot_refusal(doc, running=True, memory=False) == hv.RUNNING_WITHOUT_MEMORY
    assert hv.snapshot_refusal(doc, running=False, memory=False) is None


def _info(name: str, parent: str | None, created: int, current: bool = False) -> hv.SnapshotInfo:
    return hv.SnapshotInfo(name=name, description="", created=created, state="running", parent=parent,
                           current=current, memory=True, disks=("vda",))


def test_tree_order_and_descendants() -> None:
    rows = [_info("c", "a", 3), _info("a", None, 1), _info("b", "a", 2), _info("d", "b", 4, current=True),
            _info("e", None, 5)]
    tree = [(n.snapshot.name, n.depth, n.children) for n in hv.arrange_tree(rows)]
    assert tree == [("a", 0, 2), ("b", 1, 1), ("d", 2, 0), ("c", 1, 0), ("e", 0, 0)]
    assert sorted(hv.descendants(rows, "a")) == ["b", "c", "d"]
    assert hv.descendants(rows, "e") == []


# ------------------------------------------------------------------------------------------------ services


@pytest.fixture
def vm(test_host, owner):  # type: ignore[no-untyped-def]
    """alice's test-driver VM with a qcow2 disk (a volume of the driver's pool) and an empty CD-ROM drive."""
    conn = hv.registry.connection(test_host.uri)
    volume = hv.pool_lookup(conn, POOL).create_volume(hv.VolumeSpec(name=unique_name("snap"), capacity=1 << 20))
    doc = spec_testdrv(devices=(hv.Disk.new(target="vda", source=volume.path),
                                hv.Disk.new(target="sda", device="cdrom", bus="sata")))
    record = vm_services.vm_define(actor=owner, host=test_host, doc=doc)
    yield record
    try:
        volume.delete()
    except hv.HypervisorError:
        pass


def _run(django_capture_on_commit_callbacks: Any, call: Any) -> Job:
    with django_capture_on_commit_callbacks(execute=True):
        job = call()
    job.refresh_from_db()
    return job


def _names(vm: Any) -> list[str]:
    dom = hv.domain_lookup(hv.registry.connection(vm.host.uri), str(vm.uuid))
    return [s.name for s in hv.snapshot_list(dom)]


@pytest.mark.django_db
def test_create_list_revert_delete_as_jobs(vm, owner, eager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_create(actor=owner, vm=vm, name="one", description="first", memory=False))
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.kind == "snapshot.create" and job.progress == 100
    log = [line.message for line in job.lines.all()]
    assert any("Snapshot one taken" in m and "disks only" in m for m in log), log
    _run(django_capture_on_commit_callbacks, lambda: snapshots.snapshot_create(actor=owner, vm=vm, name="two"))
    vm_services.vm_start(actor=owner, vm=vm)
    job = _run(django_capture_on_commit_callbacks, lambda: snapshots.snapshot_create(actor=owner, vm=vm, name="three"))
    assert job.result["memory"] is True and job.result["state"] == "running"
    over = selectors.snapshot_overview(actor=owner, vm=vm)
    assert [(n.snapshot.name, n.depth) for n in over.tree] == [("one", 0), ("two", 1), ("three", 2)]
    assert over.current == "three" and over.refusal is None and over.running
    assert over.tree[0].snapshot.description == "first" and over.tree[0].snapshot.state == "shutoff"

    # revert of a running VM: refused without confirmation, nothing queued
    with pytest.raises(ConflictError) as refused:
        snapshots.snapshot_revert(actor=owner, vm=vm, name="one")
    assert refused.value.code == "confirm_needed"
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_revert(actor=owner, vm=vm, name="one", confirm=True))
    assert job.state == Job.State.SUCCEEDED, job.error
    dom = hv.domain_lookup(hv.registry.connection(vm.host.uri), str(vm.uuid))
    assert dom.state() == hv.DomainState.SHUTOFF  # as "one" was
    assert selectors.snapshot_overview(actor=owner, vm=vm).current == "one"
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_revert(actor=owner, vm=vm, name="three"))  # shut off: no confirmation
    assert job.state == Job.State.SUCCEEDED and dom.state() == hv.DomainState.RUNNING

    # delete one: its child moves up; delete with children: the subtree goes
    job = _run(django_capture_on_commit_callbacks, lambda: snapshots.snapshot_delete(actor=owner, vm=vm, name="two"))
    assert job.state == Job.State.SUCCEEDED, job.error
    tree = selectors.snapshot_overview(actor=owner, vm=vm).tree
    assert [(n.snapshot.name, n.depth) for n in tree] == [("one", 0), ("three", 1)]
    job = _run(django_capture_on_commit_callbacks,
               lambda: snapshots.snapshot_delete(actor=owner, vm=vm, name="one", children=True))
    assert job.result["deleted"] == ["one", "three"]
    assert _names(vm) == []
    actions = set(AuditEntry.objects.filter(ok=True).values_list("action", flat=True))
    assert {"vm.snapshot_create", "vm.snapshot_revert", "vm.snapshot_delete"} <= actions


@pytest.mark.django_db
def test_bad_input_changes_nothing(vm, owner, other_user, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VmShare

    snapshots_before = _names(vm)
    audit, jobs = AuditEntry.objects.count(), Job.objects.count()
    with pytest.raises(ValidationError) as bad:
        snapshots.snapshot_create(actor=owner, vm=vm, name="no spaces")
    assert "name" in bad.value.fields
    with pytest.raises(ValidationError) as long:
        snapshots.snapshot_create(actor=owner, vm=vm, name="ok", description="x" * 1001)
    assert "description" in long.value.fields
    vm_services.vm_start(actor=owner, vm=vm)
    with pytest.raises(ConflictError) as no_memory:
        snapshots.snapshot_create(actor=owner, vm=vm, name="ok", memory=False)
    assert no_memory.value.code == "snapshot_unsupported" and "must include its memory" in no_memory.value.detail
    with pytest.raises(hv.SnapshotNotFound):
        snapshots.snapshot_revert(actor=owner, vm=vm, name="nothing", confirm=True)
    with pytest.raises(hv.SnapshotNotFound):
        snapshots.snapshot_delete(actor=owner, vm=vm, name="nothing")
    VmShare.objects.create(vm=vm, user=other_user, role="operator")
    with pytest.raises(PermissionDeniedError):
        snapshots.snapshot_create(actor=other_user, vm=vm, name="ok")
    assert _names(vm) == snapshots_before
    assert Job.objects.count() == jobs
    assert AuditEntry.objects.filter(action__startswith="vm.snapshot").count() == 0
    assert AuditEntry.objects.count() == audit + 1  # the start


@pytest.mark.django_db
def test_name_taken_and_raw_disk_refused(vm, owner, test_host, eager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    _run(django_capture_on_commit_callbacks, lambda: snapshots.snapshot_create(actor=owner, vm=vm, name="one"))
    with pytest.raises(ConflictError) as taken:
        snapshots.snapshot_create(actor=owner, vm=vm, name="one")
    assert taken.value.code == "name_taken" and "name" in taken.value.fields
    raw = vm_services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(devices=(
        hv.Disk.new(target="vda", source="/p/raw.img", format="raw"),)))
    with pytest.raises(ConflictError) as refused:
        snapshots.snapshot_create(actor=owner, vm=raw, name="one")
    assert "Disk vda is raw, not qcow2" in refused.value.detail
    assert _names(raw) == []
    assert selectors.snapshot_overview(actor=owner, vm=raw).refusal is not None


@pytest.mark.django_db
def test_quota_counts_the_worst_case(vm, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    """The snapshot's worst case (the disks' allocation, plus the memory when saved) must fit in the owner's disk
    quota; a quota that the disks already fill refuses it."""
    Quota.objects.create(user=owner, max_disk_gib=0)
    vm_services.vm_start(actor=owner, vm=vm)  # with its memory (256 MiB on the test driver)
    with pytest.raises(ConflictError) as refused:
        snapshots.snapshot_create(actor=owner, vm=vm, name="big")
    assert refused.value.code == "quota"
    assert _names(vm) == []


@pytest.mark.django_db
def test_job_stops_when_access_was_lowered(vm, owner, other_user, eager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VmShare

    share = VmShare.objects.create(vm=vm, user=other_user, role="manager")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = snapshots.snapshot_create(actor=other_user, vm=vm, name="late")
    share.role = "viewer"
    share.save()
    for callback in callbacks:
        callback()
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "may no longer snapshot" in job.error
    assert _names(vm) == []


# ------------------------------------------------------------------------------------------------ API and page
@pytest.mark.django_db
def test_api_codes(vm, owner, other_user, eager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/v1/vms/{vm.uuid}/snapshots/"
    assert api.get(url).json() == {"current": None, "state": "shutoff", "can_snapshot": True, "refusal": None,
                                   "snapshots": []}
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(url, {"name": "one", "description": "first"}, format="json")
    assert created.status_code == 202 and created.json()["type"] == "snapshot.create"
    body = api.get(url).json()
    assert body["current"] == "one" and body["snapshots"][0]["depth"] == 0
    assert body["snapshots"][0]["memory"] is False and body["snapshots"][0]["disks"] == ["vda"]
    assert api.get(url + "one/").json()["description"] == "first"
    bad = api.post(url, {"name": "a b"}, format="json")
    assert bad.status_code == 400 and "name" in bad.json()["fields"]
    taken = api.post(url, {"name": "one"}, format="json")
    assert taken.status_code == 409 and taken.json()["error"] == "name_taken"
    assert api.get(url + "nothing/").status_code == 404
    assert api.post(url + "nothing/revert/", {"confirm": True}, format="json").status_code == 404
    assert api.delete(url + "one/?children=maybe").status_code == 400
    vm_services.vm_start(actor=owner, vm=vm)
    unconfirmed = api.post(url + "one/revert/", {}, format="json")
    assert unconfirmed.status_code == 409 and unconfirmed.json()["error"] == "confirm_needed"
    no_memory = api.post(url, {"name": "two", "memory": False}, format="json")
    assert no_memory.status_code == 409 and no_memory.json()["error"] == "snapshot_unsupported"
    with django_capture_on_commit_callbacks(execute=True):
        reverted = api.post(url + "one/revert/", {"confirm": True}, format="json")
    assert reverted.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        deleted = api.delete(url + "one/?children=true")
    assert deleted.status_code == 202 and deleted.json()["type"] == "snapshot.delete"
    assert _names(vm) == []
    bob = APIClient()
    bob.force_authenticate(other_user)
    assert bob.get(url).status_code == 404


@pytest.mark.django_db
def test_page_section_shows_tree_form_and_refusal(vm, owner, test_host, eager, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/protection/vms/{vm.uuid}/snapshots/create/", {"name": "one", "description": "d"})
    assert response.status_code == 302 and response["Location"].endswith("#vm-snapshots")
    part = client.get(f"/protection/vms/{vm.uuid}/snapshots/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-snapshot="one" data-current="1"' in part and 'id="snapshot-create"' in part
    from kvmweb.machines.models import VmShare

    viewer = get_user_model().objects.create_user(username="vera", password="vera-pass-123")
    VmShare.objects.create(vm=vm, user=viewer, role="operator")
    seen = Client()
    seen.force_login(viewer)
    theirs = seen.get(f"/protection/vms/{vm.uuid}/snapshots/", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-snapshot="one"' in theirs
    assert 'id="snapshot-create"' not in theirs and "Revert" not in theirs and "Delete" not in theirs
    page = client.get(f"/vms/{vm.uuid}/").content.decode()
    assert 'href="#vm-snapshots"' in page and 'id="vm-snapshots"' in page
    raw = vm_services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(devices=(
        hv.Disk.new(target="vda", source="/p/raw.img", format="raw"),)))
    part = client.get(f"/protection/vms/{raw.uuid}/snapshots/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="snapshot-refusal"' in part and "raw, not qcow2" in part and 'id="snapshot-create"' not in part
