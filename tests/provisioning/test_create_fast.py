"""Fast tests of VM creation on libvirt's test driver: validation, OS defaults, golden XML, the job, rollback."""
from __future__ import annotations

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmweb import hypervisor as hv
from kvmweb.core.errors import ValidationError
from kvmweb.jobs.models import Job
from kvmweb.provisioning.osinfo import GENERIC, os_variant
from kvmweb.provisioning.services import CreateRequest, NewDisk, build_document, vm_create, vm_create_validate
from tests.conftest import unique_name

pytestmark = pytest.mark.django_db
TEST_URI = "test:///default"


def _names() -> set[str]:
    return {row.name for row in hv.domain_list(hv.registry.connection(TEST_URI), sizes=False)}


def test_osinfo_defaults_follow_virt_install() -> None:
    debian = os_variant("debian11")
    assert debian and debian.disk_bus == "virtio" and debian.nic_model == "virtio"
    assert debian.recommended_disk_gib == 20 and debian.recommended_memory_mib >= 1024
    xp = os_variant("winxp")
    assert xp and xp.disk_bus == "sata" and xp.nic_model == "e1000"
    generic = os_variant(GENERIC)
    assert generic and generic.disk_bus == "sata"
    assert os_variant("no-such-os") is None


def test_golden_xml_of_a_created_domain(golden) -> None:  # type: ignore[no-untyped-def]
    req = CreateRequest(
        host=None, name="web1", vcpus=2, memory_mib=2048, iso_path="/var/lib/kvmweb/isos/install.iso",  # type: ignore[arg-type]
        disk=NewDisk(pool="vms", name="web1.qcow2", path="/vms/web1.qcow2", size=20 << 30, format="qcow2"),
        variant=os_variant("debian11"), network="isolated", start=True, autostart=False,  # type: ignore[arg-type]
        machine="q35", video="virtio",  # what a host with q35 and virtio-gpu gives debian11 (platform_for)
    )
    xml = build_document(req, uuid="9b4f3f5e-3a57-4c1e-9a53-1f0f7a3f2b10", domain_type="kvm", owner="alice").to_xml()
    golden("domain_created_debian11.xml", xml)
    doc = hv.DomainDocument.from_xml(xml)
    cdrom = [d.info() for d in doc.disks if d.info().device == "cdrom"][0]
    assert cdrom.shared_media and cdrom.boot_order == 1 and cdrom.bus == "sata"
    assert [(g.kind, g.listen_type, g.port) for g in doc.graphics] == [("vnc", "none", None)]


def test_create_runs_the_job_and_starts_the_vm(owner, open_testdrv, test_host, test_iso, eager, testdrv_volumes,
                                                django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    with django_capture_on_commit_callbacks(execute=True):
        created = vm_create(actor=owner, host=test_host.pk, name=name, vcpus=1, memory="256", iso=test_iso.pk,
                            disk_size="1", disk_format="qcow2", disk_pool="default-pool", os_variant_id="debian11",
                            network="default", start=True, autostart=True)
    vm, job = created.vm, created.job
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.progress == 100 and job.target == str(vm.uuid)
    dom = hv.domain_lookup(hv.registry.connection(TEST_URI), str(vm.uuid))
    assert dom.state() == hv.DomainState.RUNNING
    doc = dom.document()
    assert doc.vcpus == 1 and doc.memory_kib == 256 * 1024
    disk = [d.info() for d in doc.disks if d.info().device == "disk"][0]
    assert disk.bus == "virtio" and disk.source == f"/default-pool/{name}.qcow2"
    assert vm.owner == owner


def test_failing_create_leaves_nothing_and_says_what_was_undone(owner, open_testdrv, test_host, eager, testdrv_volumes,
                                                                django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    conn = hv.registry.connection(TEST_URI)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = vm_create(actor=owner, host=test_host, name=name, memory="128M", disk_size="64M",
                            disk_pool="default-pool", start=True)
    vm, job = created.vm, created.job
    # Someone takes the disk's name between the request and the job: the job must fail and undo everything.
    pool = hv.pool_lookup(conn, "default-pool")
    pool.create_volume(hv.VolumeSpec(name=f"{name}.qcow2", capacity=1 << 20))
    try:
        for callback in callbacks:
            callback()
    finally:
        pool.volume(f"{name}.qcow2").delete()
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert name not in _names()
    log = "\n".join(line.message for line in job.lines.all())
    assert "Rolled back: undefined the new domain" in log
    assert not type(vm).objects.filter(uuid=vm.uuid).exists()


@pytest.mark.parametrize("field,value,message", [
    ("name", "bad name", "letters"), ("name", "a/b", "letters"), ("name", "<x>", "letters"), ("name", "", "letters"),
    ("vcpus", 0, "between 1"), ("vcpus", "two", "whole number"), ("vcpus", 10_000, "between 1"),
    ("memory", "-5", "without a sign"), ("memory", "0", "not a size"), ("memory", "64T", "host's memory"),
    ("iso", 999_999, "no such install medium"), ("disk_size", "0", "not a size"), ("disk_size", "10X", "not a size"),
    ("disk_size", "60T", "free"), ("disk_pool", "no-such-pool", "no storage pool"), ("disk_format", "vmdk", "qcow2"),
    ("os_variant_id", "beos", "unknown OS variant"), ("network", "nope", "no network"),
])
def test_bad_input_is_refused_with_a_field_error(owner, open_testdrv, test_host, field, value, message) -> None:  # type: ignore[no-untyped-def]
    fields = {"host": test_host.pk, "name": unique_name(), "memory": "128", "disk_size": "1",
              "disk_pool": "default-pool", field: value}
    before = _names()
    with pytest.raises(ValidationError) as info:
        vm_create(actor=owner, **fields)
    key = "os_variant" if field == "os_variant_id" else field
    assert key in info.value.fields, info.value.fields
    assert message in " ".join(info.value.fields[key])
    assert _names() == before


def test_existing_name_is_refused(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as info:
        vm_create_validate(actor=owner, host=test_host, name="test")  # the test driver's own domain
    assert "already exists" in info.value.fields["name"][0]


def test_closed_pool_and_network_are_refused_to_users_not_staff(owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    fields = {"host": test_host, "name": unique_name(), "disk_size": "1", "disk_pool": "default-pool",
              "network": "default", "start": False}
    with pytest.raises(ValidationError) as info:
        vm_create_validate(actor=owner, **fields)
    assert set(info.value.fields) == {"disk_pool", "network"}
    assert vm_create_validate(actor=staff, **fields).disk is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=80), memory=st.one_of(st.integers(), st.text(max_size=12)),
       disk=st.one_of(st.none(), st.integers(min_value=-10, max_value=10**15), st.text(max_size=12)),
       vcpus=st.one_of(st.integers(), st.text(max_size=5)))
def test_api_never_500_and_never_defines_from_refused_input(owner, open_testdrv, test_host, name, memory, disk, vcpus) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(owner)
    before = _names()
    body = {"host": test_host.pk, "name": name, "memory": memory, "vcpus": vcpus, "disk_size": disk,
            "disk_pool": "default-pool", "start": False}
    response = client.post("/api/v1/vms/", body, content_type="application/json")
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert _names() == before
        assert "fields" in response.json() or response.json()["error"]
    else:
        hv.domain_lookup(hv.registry.connection(TEST_URI), response.json()["uuid"]).undefine()
