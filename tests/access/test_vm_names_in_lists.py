"""Every list that names VMs names only the VMs its reader may see (the permission module's ``vm_uuids_visible``):
the ISO library's "Used by", a network's "VMs on this network", a volume's "used by", the jobs pages. Others are
counted ("1 VM of other users"), never named. A share makes the name appear; removing it hides it again."""
from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.jobs.services import job_create
from kvmweb.machines import services
from kvmweb.media.models import IsoImage
from kvmweb.networks.models import AllowedNetwork
from kvmweb.storage.models import PoolAccess
from kvmweb.storage.services import volume_create
from tests.conftest import spec_testdrv, unique_name

pytestmark = pytest.mark.django_db

ISO = "/isos/kvmweb-test-library.iso"


def _page(user, url: str) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def _api(user, url: str):  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.json()


def _alices_vm(owner, test_host, *devices):  # type: ignore[no-untyped-def]
    return services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(unique_name("alice-web"),
                                                                             devices=devices))


@pytest.fixture
def disk_users(monkeypatch):  # type: ignore[no-untyped-def]
    """libvirt's test driver has no block stats, which ``domain_disk_users`` reads: here the same answer is read
    from the domains' definitions (the lists' filtering is what is tested; qemu:///system is in the real tests)."""
    def from_definitions(conn: hv.Connection) -> dict[str, list[hv.DiskUse]]:
        users: dict[str, list[hv.DiskUse]] = {}
        for row in hv.domain_list(conn, sizes=False):
            for disk in hv.domain_lookup(conn, row.uuid).document().disks:
                info = disk.info()
                if info.source:
                    users.setdefault(info.source, []).append(hv.DiskUse(row.uuid, row.name, info.target))
        return users

    monkeypatch.setattr(hv, "domain_disk_users", from_definitions)


def test_iso_library_used_by(owner, other_user, staff, test_host, disk_users) -> None:  # type: ignore[no-untyped-def]
    IsoImage.objects.create(host=test_host, name="library.iso", path=ISO, size=1, complete=True, added_by=staff)
    vm = _alices_vm(owner, test_host, hv.Disk.new(target="sda", device="cdrom", bus="sata", source=ISO))
    assert vm.name in _page(owner, "/media-library/")
    assert vm.name in _page(staff, "/media-library/")
    bobs = _page(other_user, "/media-library/")
    assert vm.name not in bobs and "1 VM of other users" in bobs
    share = services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    assert vm.name in _page(other_user, "/media-library/")
    services.vm_unshare(actor=owner, vm=vm, share_id=share.share_id)  # type: ignore[arg-type]
    assert vm.name not in _page(other_user, "/media-library/")


def test_vms_on_a_network(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    AllowedNetwork.objects.create(host=test_host, name="default")
    vm = _alices_vm(owner, test_host, hv.Interface.new(network="default"))
    detail = f"/networks/{test_host.pk}/default/"
    api = f"/api/v1/hosts/{test_host.pk}/networks/default/"
    for url in ("/networks/", detail):
        assert vm.name in _page(owner, url) and vm.name in _page(staff, url)
        assert vm.name not in _page(other_user, url)
    assert str(vm.uuid) not in {v["uuid"] for v in _api(other_user, api)["vms"]}
    assert str(vm.uuid) in {v["uuid"] for v in _api(owner, api)["vms"]}
    assert vm.name not in str(_api(other_user, "/api/v1/networks/"))
    services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    assert vm.name in _page(other_user, detail)
    assert str(vm.uuid) in {v["uuid"] for v in _api(other_user, api)["vms"]}


def test_volume_used_by(owner, other_user, staff, test_host, disk_users) -> None:  # type: ignore[no-untyped-def]
    """bob's own volume, which alice's VM uses as a disk: bob sees his volume, not whose VM uses it."""
    access, _ = PoolAccess.objects.get_or_create(host=test_host, pool="default-pool")
    access.users.add(other_user)
    name = unique_name("vol")
    info = volume_create(actor=other_user, host=test_host, pool="default-pool", name=name, size="1M")
    vm = _alices_vm(owner, test_host, hv.Disk.new(target="vdb", source=info.path))
    pool_page = f"/storage/hosts/{test_host.pk}/pools/default-pool/"
    volume_api = f"/api/v1/hosts/{test_host.pk}/pools/default-pool/volumes/{name}/"
    page = _page(other_user, pool_page)
    assert name in page and vm.name not in page and "1 VM of other users" in page
    body = _api(other_user, volume_api)
    assert body["used_by"] == [] and body["used_by_others"] == 1
    listing = _api(other_user, f"/api/v1/hosts/{test_host.pk}/pools/default-pool/volumes/")
    assert vm.name not in str(listing)
    assert [u["name"] for u in _api(staff, volume_api)["used_by"]] == [vm.name]
    assert vm.name in _page(staff, pool_page)
    services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    assert [u["name"] for u in _api(other_user, volume_api)["used_by"]] == [vm.name]
    assert vm.name in _page(other_user, pool_page)


def test_jobs_pages_show_only_ones_own_jobs(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    """A job names the VM it works on: jobs stay their starter's (and staff's), also on a shared VM."""
    vm = _alices_vm(owner, test_host)
    job = job_create(actor=owner, kind="jobs.selftest", title=f"Clone {vm.name}", target_type="vm",
                     target=str(vm.uuid))
    services.vm_share(actor=owner, vm=vm, user=other_user, role="manager")
    assert vm.name in _page(owner, "/jobs/") and vm.name in _page(staff, "/jobs/")
    assert vm.name not in _page(other_user, "/jobs/")
    assert job.pk not in {j["id"] for j in _api(other_user, "/api/v1/jobs/")["results"]}
    assert Client().get(f"/jobs/{job.pk}/").status_code == 302
    bob = Client()
    bob.force_login(other_user)
    assert bob.get(f"/jobs/{job.pk}/").status_code == 404
    # the VM's own page (he may see it) lists only his jobs on it
    assert f"Clone {vm.name}" not in _page(other_user, f"/vms/{vm.uuid}/part/activity/")
    assert f"Clone {vm.name}" in _page(owner, f"/vms/{vm.uuid}/part/activity/")


def test_hosts_page_is_staff_only(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = _alices_vm(owner, test_host)
    bob = Client()
    bob.force_login(other_user)
    assert bob.get("/hosts/").status_code in (302, 403)
    assert APIClient().get("/api/v1/hosts/").status_code in (401, 403)
    assert vm.name not in bob.get("/hosts/").content.decode()
