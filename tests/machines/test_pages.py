"""The VM pages through Django's test client (the browser tests drive the same pages in Chromium)."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.machines import services
from tests.conftest import PREFIX, spec_testdrv

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_owner(owner) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(owner)
    return c


@pytest.fixture
def vm(owner, test_host):  # type: ignore[no-untyped-def]
    return services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(
        devices=(hv.Disk.new(target="vda", source="/nonexistent/disk.qcow2"),)))


def test_list_detail_and_actions(client_owner, vm) -> None:  # type: ignore[no-untyped-def]
    html = client_owner.get("/vms/").content.decode()
    assert vm.name in html and "shut off" in html
    page = client_owner.get(f"/vms/{vm.uuid}/").content.decode()
    for label in ("UUID", "OS Type", "CPU(s)", "Max memory", "Persistent", "Managed save", "Security model",
                  "/nonexistent/disk.qcow2", "This VM has no VNC display."):
        assert label in page
    r = client_owner.post(f"/vms/{vm.uuid}/start/", follow=True)
    assert f"{vm.name} started." in r.content.decode() and "running" in r.content.decode()
    r = client_owner.post(f"/vms/{vm.uuid}/start/", follow=True)
    assert "already running" in r.content.decode()
    assert client_owner.get(f"/vms/{vm.uuid}/start/").status_code == 405
    delete_page = client_owner.get(f"/vms/{vm.uuid}/delete/").content.decode()
    assert "Force it off first" in delete_page
    client_owner.post(f"/vms/{vm.uuid}/force-off/")
    r = client_owner.post(f"/vms/{vm.uuid}/delete/", {"delete_volumes": "on"})
    assert r.status_code == 200 and "Tick the confirmation box" in r.content.decode()  # nothing deleted
    r = client_owner.post(f"/vms/{vm.uuid}/delete/", {"confirm": "on", "delete_volumes": "on"}, follow=True)
    text = r.content.decode()
    assert f"{vm.name} was deleted" in text and "not in a storage pool" in text


def test_filters_and_pagination(client_owner, owner, test_host, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_PAGE_SIZE = 2
    for i in range(5):
        services.vm_define(actor=owner, host=test_host, doc=spec_testdrv(name=f"{PREFIX}p{i}"))
    first = client_owner.get("/vms/").content.decode()
    assert "Page 1 of 3" in first and f"{PREFIX}p0" in first and f"{PREFIX}p2" not in first
    assert f"{PREFIX}p4" in client_owner.get("/vms/?page=3").content.decode()
    partial = client_owner.get("/vms/?name=p3", HTTP_HX_REQUEST="true").content.decode()
    assert f"{PREFIX}p3" in partial and "<html" not in partial
    assert "Unknown state" in client_owner.get("/vms/?state=nope").content.decode()


def test_dead_host_page_says_so_in_words(db, owner) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VirtualMachine

    host = Host.objects.create(name="gone", uri="qemu+unix:///system?socket=/nonexistent/sock")
    vm = VirtualMachine.objects.create(host=host, uuid="22222222-2222-4222-8222-222222222222", name="ghost",
                                       owner=owner)
    c = Client()
    c.force_login(owner)
    r = c.get(f"/vms/{vm.uuid}/")  # a page that says so (200), not an error page
    assert r.status_code == 200 and "Its host, gone, does not answer" in r.content.decode()
    r = c.get("/vms/")
    assert r.status_code == 200 and "Host <strong>gone</strong> does not answer" in r.content.decode()


def test_login_required(db) -> None:  # type: ignore[no-untyped-def]
    r = Client().get("/vms/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


def test_hosts_page_for_staff(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    c = Client()
    c.force_login(staff)
    html = c.get("/hosts/").content.decode()
    assert "testdrv" in html and "answers" in html
