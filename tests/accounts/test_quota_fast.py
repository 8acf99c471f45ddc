"""Per-user quotas on libvirt's test driver: limits (row, settings, staff), usage, refusals before anything is
made (VM create, clone, volume create, grow, upload), the VM list's usage line and GET /api/v1/quota/."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.accounts.models import Quota
from kvmweb.accounts.selectors import Limits, quota_limits, quota_usage
from kvmweb.accounts.services import check_quota
from kvmweb.core.errors import ConflictError
from kvmweb.jobs.models import Job
from kvmweb.machines.models import VirtualMachine
from kvmweb.provisioning.services import vm_create
from kvmweb.machines.services import vm_define
from kvmweb.storage import services as storage
from kvmweb.storage.clone import vm_clone
from kvmweb.storage.models import VolumeOwner
from tests.conftest import spec_testdrv, unique_name

pytestmark = pytest.mark.django_db
TEST_URI = "test:///default"
MiB = 1024**2


def _names() -> set[str]:
    return {row.name for row in hv.domain_list(hv.registry.connection(TEST_URI), sizes=False)}


def _vm(user, host, vcpus: int = 1, memory_mib: int = 256):  # type: ignore[no-untyped-def]
    return vm_define(actor=user, host=host, doc=spec_testdrv(vcpus=vcpus, memory_kib=memory_mib * 1024))


def _limit(user, **limits: int | None) -> Quota:  # type: ignore[no-untyped-def]
    return Quota.objects.create(user=user, **limits)


# -- limits ------------------------------------------------------------------------------------------------
def test_no_row_and_empty_settings_mean_unlimited(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    assert quota_limits(owner) == Limits() and quota_limits(owner).unlimited
    _vm(owner, test_host, vcpus=2)
    check_quota(owner, vms=100, vcpus=100, memory_mib=10**6, disk_bytes=10**15)  # nothing refused


def test_defaults_come_from_settings_and_a_row_wins(owner, other_user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_QUOTA_VMS = "3"
    settings.KVMWEB_QUOTA_VCPUS = 8
    settings.KVMWEB_QUOTA_MEMORY_MIB = ""
    settings.KVMWEB_QUOTA_DISK_GIB = "100"
    assert quota_limits(other_user) == Limits(vms=3, vcpus=8, memory_mib=None, disk_gib=100)
    _limit(owner, max_vms=1, max_memory_mib=512)
    assert quota_limits(owner) == Limits(vms=1, vcpus=None, memory_mib=512, disk_gib=None)


def test_staff_are_never_limited(staff, test_host, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_QUOTA_VMS = "0"
    _limit(staff, max_vms=0)
    assert quota_limits(staff).unlimited
    check_quota(staff, vms=5)


# -- usage ---------------------------------------------------------------------------------------------------
def test_usage_counts_the_users_vms_sizes_and_volumes(owner, other_user, test_host, open_testdrv,
                                                      testdrv_volumes) -> None:  # type: ignore[no-untyped-def]
    _vm(owner, test_host, vcpus=2, memory_mib=512)
    _vm(owner, test_host, vcpus=1, memory_mib=256)
    _vm(other_user, test_host, vcpus=4, memory_mib=1024)
    storage.volume_create(actor=owner, host=test_host, pool="default-pool", name=unique_name("v"), size="3M")
    usage = quota_usage(owner)
    assert (usage.vms, usage.vcpus, usage.memory_mib, usage.disk_bytes) == (2, 3, 768, 3 * MiB)
    assert usage.unavailable == []
    assert quota_usage(other_user).vms == 1


def test_a_dead_host_counts_its_vms_with_zero_sizes_and_says_so(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host
    import uuid

    dead = Host.objects.create(name="gone", uri="test+tcp://127.0.0.1:1/default")
    VirtualMachine.objects.create(host=dead, uuid=uuid.uuid4(), name="far", owner=owner)
    _vm(owner, test_host, vcpus=2)
    usage = quota_usage(owner)
    assert usage.vms == 2 and usage.vcpus == 2 and usage.unavailable == ["gone"]


# -- VM create ------------------------------------------------------------------------------------------------
def test_create_refused_at_the_limit_leaves_nothing(owner, test_host, eager,
                                                    django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    _limit(owner, max_vcpus=4)
    _vm(owner, test_host, vcpus=3)
    name = unique_name()
    rows, jobs = VirtualMachine.objects.count(), Job.objects.count()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ConflictError) as err:
        vm_create(actor=owner, host=test_host.pk, name=name, vcpus=2, memory="64", start=False)
    assert err.value.code == "quota" and err.value.status == 409
    assert err.value.detail == "Your quota allows 4 vCPUs; your VMs use 3 and this one needs 2."
    assert err.value.fields == {"vcpus": [err.value.detail]}
    assert name not in _names()
    assert (VirtualMachine.objects.count(), Job.objects.count()) == (rows, jobs)
    # below the limit it is made
    with django_capture_on_commit_callbacks(execute=True):
        job = vm_create(actor=owner, host=test_host.pk, name=name, vcpus=1, memory="64", start=False).job
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert name in _names() and quota_usage(owner).vcpus == 4


def test_create_refused_over_vms_memory_and_disk(owner, test_host, open_testdrv,
                                                 testdrv_volumes) -> None:  # type: ignore[no-untyped-def]
    _limit(owner, max_vms=1, max_memory_mib=300, max_disk_gib=1)
    _vm(owner, test_host, memory_mib=256)
    name = unique_name()
    with pytest.raises(ConflictError) as err:
        vm_create(actor=owner, host=test_host.pk, name=name, vcpus=1, memory="64", disk_size="2",
                  disk_pool="default-pool", start=False)
    fields = err.value.fields
    assert fields["vms"] == ["Your quota allows 1 VMs; you have 1 and this would make 2."]
    assert fields["memory"] == ["Your quota allows 300 MiB of memory; your VMs use 256 MiB and this one needs 64 MiB."]
    assert fields["disk_size"] == ["Your quota allows 1 GiB of disk; your volumes use 0 GiB and this needs 2 GiB."]
    assert name not in _names()


def test_create_form_shows_the_quota_message(owner, test_host, open_testdrv) -> None:  # type: ignore[no-untyped-def]
    _limit(owner, max_vcpus=1)
    client = Client()
    client.force_login(owner)
    name = unique_name()
    response = client.post("/vms/new/", {"host": test_host.pk, "name": name, "os_variant": "generic", "vcpus": 2,
                                         "memory": 64, "memory_unit": "M", "disk": "none", "disk_format": "qcow2"})
    assert response.status_code == 200
    assert "Your quota allows 1 vCPUs; your VMs use 0 and this one needs 2." in response.content.decode()
    assert name not in _names()


def test_api_create_answers_409_with_the_message(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    _limit(owner, max_vms=0)
    client = Client()
    client.force_login(owner)
    name = unique_name()
    response = client.post("/api/v1/vms/", {"host": test_host.pk, "name": name, "vcpus": 1, "memory": "64",
                                            "start": False}, content_type="application/json")
    assert response.status_code == 409, response.content
    assert response.json()["error"] == "quota"
    assert "Your quota allows 0 VMs" in response.json()["detail"]
    assert name not in _names()


def test_staff_create_is_not_limited(staff, test_host, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_QUOTA_VMS = "0"
    vm = vm_create(actor=staff, host=test_host.pk, name=unique_name(), vcpus=1, memory="64", start=False).vm
    assert vm.owner == staff


# -- storage ---------------------------------------------------------------------------------------------------
def test_volume_create_and_grow_refused_over_the_disk_quota(owner, test_host, open_testdrv,
                                                            testdrv_volumes) -> None:  # type: ignore[no-untyped-def]
    _limit(owner, max_disk_gib=1)
    name = unique_name("v")
    with pytest.raises(ConflictError) as err:
        storage.volume_create(actor=owner, host=test_host, pool="default-pool", name=name, size="2G")
    assert err.value.fields == {"size": ["Your quota allows 1 GiB of disk; your volumes use 0 GiB and this needs "
                                         "2 GiB."]}
    assert not VolumeOwner.objects.filter(name=name).exists()
    storage.volume_create(actor=owner, host=test_host, pool="default-pool", name=name, size="512M")
    with pytest.raises(ConflictError, match="your volumes use 0.5 GiB and this needs 1 GiB"):
        storage.volume_resize(actor=owner, host=test_host, pool="default-pool", name=name, size="+1G")
    pool = hv.pool_lookup(hv.registry.connection(TEST_URI), "default-pool")
    assert pool.volume(name).spec().capacity == 512 * MiB
    with pytest.raises(ConflictError, match="quota"):
        storage.volume_upload_begin(actor=owner, host=test_host, pool="default-pool", name=unique_name("u"),
                                    size=600 * MiB)


def test_clone_refused_over_the_quota(owner, test_host, open_testdrv, testdrv_volumes) -> None:  # type: ignore[no-untyped-def]
    vol = unique_name("d") + ".qcow2"
    info = storage.volume_create(actor=owner, host=test_host, pool="default-pool", name=vol, size="600M")
    disk = hv.Disk.new(target="vda", bus="virtio", source=info.path, format="qcow2")
    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv(devices=(disk,)))
    quota = _limit(owner, max_disk_gib=1)
    jobs = Job.objects.count()
    with pytest.raises(ConflictError) as err:
        vm_clone(actor=owner, vm=vm, name=unique_name(), mode="full")
    assert "your volumes use 0.6 GiB and this needs 0.6 GiB" in err.value.detail
    with pytest.raises(ConflictError, match="quota allows 1 GiB"):
        vm_clone(actor=owner, vm=vm, name=unique_name(), mode="linked")  # overlays count their virtual size
    quota.max_disk_gib, quota.max_vms = None, 1
    quota.save()
    with pytest.raises(ConflictError, match="Your quota allows 1 VMs"):
        vm_clone(actor=owner, vm=vm, name=unique_name(), mode="full")
    assert Job.objects.count() == jobs


# -- showing it -------------------------------------------------------------------------------------------------
def test_vm_list_shows_the_usage_line_only_when_limited(owner, test_host, open_testdrv,
                                                        testdrv_volumes) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(owner)
    assert "Your quota" not in client.get("/vms/").content.decode()
    _vm(owner, test_host, vcpus=3, memory_mib=3 * 1024)
    storage.volume_create(actor=owner, host=test_host, pool="default-pool", name=unique_name("v"), size="25G")
    _limit(owner, max_vms=4, max_vcpus=8, max_memory_mib=8192, max_disk_gib=100)
    page = client.get("/vms/").content.decode()
    assert "Your quota: 1 of 4 VMs · 3 of 8 vCPUs · 3.0 of 8 GiB memory · 25 of 100 GiB disk" in page
    Quota.objects.filter(user=owner).update(max_vms=None, max_memory_mib=None, max_disk_gib=None)
    page = client.get("/vms/").content.decode()
    assert "Your quota: 3 of 8 vCPUs</small>" in page


def test_quota_api(owner, other_user, test_host) -> None:  # type: ignore[no-untyped-def]
    _vm(owner, test_host, vcpus=2, memory_mib=512)
    _limit(owner, max_vms=2, max_disk_gib=10)
    client = Client()
    assert client.get("/api/v1/quota/").status_code in (401, 403)
    client.force_login(owner)
    body = client.get("/api/v1/quota/").json()
    assert body == {
        "unlimited": False, "vms": {"limit": 2, "used": 1}, "vcpus": {"limit": None, "used": 2},
        "memory_mib": {"limit": None, "used": 512}, "disk_gib": {"limit": 10, "used": 0}, "disk_bytes_used": 0,
        "unavailable_hosts": [],
    }
    client.force_login(other_user)
    body = client.get("/api/v1/quota/").json()
    assert body["unlimited"] is True and body["vms"] == {"limit": None, "used": 0}


def test_staff_edit_quotas_in_the_admin(staff, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/auth/user/{owner.pk}/change/")
    assert page.status_code == 200 and "quota-0-max_vcpus" in page.content.decode()
    _vm(owner, test_host, vcpus=2)
    _limit(owner, max_vcpus=8)
    listing = client.get("/admin/accounts/quota/").content.decode()
    assert "2 of 8 vCPUs" in listing
