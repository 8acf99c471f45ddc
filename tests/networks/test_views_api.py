"""Pages and API of networks against the test driver: who may see and do what, and bad input → 4xx, never 500."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.machines.services import vm_define
from kvmweb.networks import services
from tests.conftest import spec_testdrv
from tests.networks.conftest import TESTDRV, net_name, short_bridge

pytestmark = pytest.mark.usefixtures("testdrv_networks")


def client(user=None) -> Client:  # type: ignore[no-untyped-def]
    c = Client()
    if user is not None:
        c.force_login(user)
    return c


def on_host(name: str) -> hv.NetworkSummary | None:
    return next((n for n in hv.network_list(hv.registry.connection(TESTDRV)) if n.name == name), None)


def test_staff_defines_through_the_form_and_drives_the_network(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    name = net_name()
    c = client(staff)
    assert c.get("/networks/new/").status_code == 200
    response = c.post("/networks/new/", {
        "host": test_host.pk, "name": name, "mode": "isolated", "bridge": short_bridge(), "subnet": "10.232.0.0/24",
        "dhcp_start": "10.232.0.10", "dhcp_end": "10.232.0.50",
        "hosts": "52:54:00:00:10:01 10.232.0.5 db\n", "domain": "lab.example", "allow_users": "on",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    net = on_host(name)
    assert net is not None and net.spec.gateway == "10.232.0.1" and net.spec.hosts[0].name == "db"
    page = c.get(f"/networks/{test_host.pk}/{name}/")
    assert page.status_code == 200 and b"10.232.0.0/24" in page.content and b"net-dumpxml" in page.content
    for action in ("start", "autostart-on", "stop", "autostart-off", "disallow", "allow"):
        assert c.post(f"/networks/{test_host.pk}/{name}/{action}/").status_code == 302
    assert c.post(f"/networks/{test_host.pk}/{name}/start/").status_code == 302
    response = c.post(f"/networks/{test_host.pk}/{name}/delete/", follow=True)
    assert b"stop it first" in response.content and on_host(name) is not None
    c.post(f"/networks/{test_host.pk}/{name}/stop/")
    response = c.post(f"/networks/{test_host.pk}/{name}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/networks/" and on_host(name) is None
    listing = c.get("/networks/")
    assert listing.status_code == 200 and b"default" in listing.content


def test_form_shows_each_problem_next_to_its_field(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    c = client(staff)
    response = c.post("/networks/new/", {
        "host": test_host.pk, "name": "bad name", "mode": "isolated", "bridge": "a-name-far-too-long",
        "subnet": "192.168.122.0/24", "dhcp_start": "10.0.0.1", "dhcp_end": "10.0.0.2",
    })
    assert response.status_code == 200
    text = response.content.decode()
    assert "Invalid network name" in text and "at most 15" in text and "outside the subnet" in text
    response = c.post("/networks/new/", {"host": test_host.pk, "name": net_name(), "mode": "isolated",
                                         "subnet": "192.168.122.0/24"})
    assert "overlaps 192.168.122.0/24 of the network default" in response.content.decode()
    response = c.post("/networks/new/", {"host": test_host.pk, "name": net_name(), "mode": "isolated",
                                         "hosts": "just-one-word"})
    assert "MAC IP [hostname]" in response.content.decode()


def test_users_cannot_define_or_drive_networks_through_pages(owner, test_host) -> None:  # type: ignore[no-untyped-def]
    c = client(owner)
    assert c.get("/networks/new/").status_code == 403
    assert c.post("/networks/new/", {"host": test_host.pk, "name": net_name()}).status_code == 403
    assert c.get(f"/networks/{test_host.pk}/default/").status_code == 404  # not open to users
    for action in ("start", "stop", "autostart-on", "allow", "delete"):
        assert c.post(f"/networks/{test_host.pk}/default/{action}/").status_code in (403, 404)
    assert on_host("default").active  # the test driver's default network is untouched


def test_api_define_list_detail_and_errors(staff, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    s, u = client(staff), client(owner)
    name = net_name()
    body = {"host": test_host.pk, "name": name, "mode": "nat", "subnet": "10.233.0.0/24",
            "dhcp_start": "10.233.0.100", "dhcp_end": "10.233.0.200",
            "hosts": [{"mac": "52:54:00:00:20:01", "ip": "10.233.0.5"}]}
    response = s.post("/api/v1/networks/", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert response.json()["gateway"] == "10.233.0.1" and response.json()["mode"] == "nat"
    assert response.json()["xml"].startswith("<network")
    again = s.post("/api/v1/networks/", body, content_type="application/json")
    assert again.status_code == 400 and "already exists" in again.json()["fields"]["name"][0]
    bad = s.post("/api/v1/networks/", {**body, "name": net_name(), "subnet": "10.233.0.0/25",
                                       "dhcp_start": "10.233.0.10", "dhcp_end": "10.233.0.20"},
                 content_type="application/json")
    assert bad.status_code == 400 and "overlaps" in bad.json()["fields"]["subnet"][0]
    bad = s.post("/api/v1/networks/", {**body, "name": net_name(), "mode": "warp"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid"
    assert u.post("/api/v1/networks/", {**body, "name": net_name()},
                  content_type="application/json").status_code == 403
    url = f"/api/v1/hosts/{test_host.pk}/networks/{name}/"
    assert u.get(url).status_code == 404
    assert u.post(url + "start/").status_code == 403
    assert s.post(url + "access/", {"allowed": True}, content_type="application/json").status_code == 200
    detail = u.get(url).json()
    assert detail["xml"] is None and detail["users_may_attach"] is True
    assert name in [n["name"] for n in u.get("/api/v1/networks/").json()["results"]]
    assert s.post(url + "start/").status_code == 200
    assert s.post(url + "autostart/", {"enabled": True}, content_type="application/json").status_code == 200
    assert s.get(url).json()["autostart"] is True
    assert s.delete(url).status_code == 409
    stopped = s.post(url + "stop/")
    assert stopped.status_code == 200 and stopped.json()["disconnected_vms"] == []
    assert s.post(url + "stop/").status_code == 409
    assert s.delete(url).status_code == 200 and on_host(name) is None
    assert s.get(url).status_code == 404
    assert s.get("/api/v1/networks/?host=abc").status_code == 400


def test_vm_nic_section_and_api(owner, other_user, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    vm = vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    spec = hv.NetworkSpec(name=net_name(), bridge=short_bridge())
    services.network_define(actor=staff, host=test_host, spec=spec, allow_users=True)
    o = client(owner)
    part = o.get(f"/networks/vm/{vm.uuid}/nics/", HTTP_HX_REQUEST="true")
    assert part.status_code == 200 and spec.name.encode() in part.content and b"No network interfaces" in part.content
    assert o.get(f"/networks/vm/{vm.uuid}/nics/").status_code == 200
    assert b"vm-nics" in o.get(f"/vms/{vm.uuid}/").content
    assert o.get(f"/api/v1/vms/{vm.uuid}/nics/").json() == []
    bad = o.post(f"/api/v1/vms/{vm.uuid}/nics/", {"network": "default"}, content_type="application/json")
    assert bad.status_code == 400 and "may not attach" in bad.json()["fields"]["network"][0]
    bad = o.post(f"/api/v1/vms/{vm.uuid}/nics/", {"network": spec.name, "mac": "ff:ff:ff:ff:ff:ff"},
                 content_type="application/json")
    assert bad.status_code == 400 and "multicast" in bad.json()["fields"]["mac"][0]
    response = o.post(f"/networks/vm/{vm.uuid}/nics/add/", {"network": spec.name, "model": "virtio", "mac": "x"},
                      follow=True)
    assert b"six pairs" in response.content
    x = client(other_user)
    assert x.get(f"/networks/vm/{vm.uuid}/nics/").status_code == 404
    assert x.post(f"/api/v1/vms/{vm.uuid}/nics/", {"network": spec.name},
                  content_type="application/json").status_code == 404
    assert x.post(f"/api/v1/vms/{vm.uuid}/nics/detach/", {"mac": "52:54:00:00:00:01"},
                  content_type="application/json").status_code == 404
    missing = o.post(f"/api/v1/vms/{vm.uuid}/nics/link/", {"mac": "52:54:00:00:00:01", "up": False},
                     content_type="application/json")
    assert missing.status_code == 404 and "no network interface" in missing.json()["detail"]


def test_anonymous_is_sent_away(test_host) -> None:  # type: ignore[no-untyped-def]
    c = client()
    assert c.get("/networks/").status_code == 302
    assert c.get("/api/v1/networks/").status_code in (401, 403)
