"""Guest information against qemu:///system: a memtest86+ guest under TCG with a guest-agent channel (memtest has
no agent, so nothing ever connects to the channel) and the same guest shut off.

The page and the API answer with ``agent: false`` and the reason in words (the agent is not connected, which
libvirt knows without waiting), cross-checked with ``virsh guestinfo`` and ``virsh domifaddr --source agent``; the
VM page as served does not contain the guest information (the part is loaded afterwards) while the part does; a
second request inside KVMWEB_GUEST_INFO_SECONDS makes no libvirt call (the connection's call counter).

A guest with a working agent is not available on the test machine (building a cloud image with qemu-guest-agent
takes long); the answering agent is covered with recorded answers in test_guest_info_fast.py.
"""
from __future__ import annotations

import subprocess

import pytest
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.machines import services
from tests.conftest import SYSTEM, memtest_spec, virsh

pytestmark = [pytest.mark.real, pytest.mark.django_db]


def virsh_error(*args: str) -> str:
    proc = subprocess.run(["virsh", "-q", "-c", SYSTEM, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, f"virsh {' '.join(args)} unexpectedly worked: {proc.stdout}"
    return proc.stderr


def calls() -> int:
    return hv.registry.connection(SYSTEM).calls


@pytest.fixture
def agent_vm(real_vm):  # type: ignore[no-untyped-def]
    doc = memtest_spec()
    doc.add_device(hv.Channel.guest_agent())
    return real_vm(doc)


def test_shut_off_vm_says_not_running(owner, agent_vm, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_GUEST_INFO_SECONDS = 30
    assert virsh("domstate", agent_vm.name).strip() == "shut off"
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(f"/api/v1/vms/{agent_vm.uuid}/guest/").json()
    assert body["agent"] is False and body["running"] is False and body["error"] == "The VM is not running."
    assert body["interfaces"] == [] and body["filesystems"] == []
    client = Client()
    client.force_login(owner)
    assert "The VM is not running." in client.get(f"/vms/{agent_vm.uuid}/part/guest/").content.decode()


def test_running_guest_without_agent_lazy_page_api_and_cache(owner, agent_vm, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_GUEST_INFO_SECONDS = 30
    services.vm_start(actor=owner, vm=agent_vm)
    assert virsh("domstate", agent_vm.name).strip() == "running"
    # the channel is there, nothing in the guest listens on it: what virsh says too
    assert "org.qemu.guest_agent.0" in virsh("dumpxml", agent_vm.name)
    assert "not connected" in virsh_error("guestinfo", agent_vm.name)
    assert "not connected" in virsh_error("domifaddr", agent_vm.name, "--source", "agent")

    client = Client()
    client.force_login(owner)
    page = client.get(f"/vms/{agent_vm.uuid}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="guest-loading"' in html and "data-vm-lazy" in html
    assert "not connected" not in html and "No guest agent answer" not in html  # the page did not ask the agent

    before = calls()
    part = client.get(f"/vms/{agent_vm.uuid}/part/guest/")
    assert part.status_code == 200 and calls() > before  # this read asked libvirt
    text = part.content.decode()
    assert "No guest agent answer" in text and "The guest agent is not connected" in text
    assert 'id="guest-loading"' not in text

    # within KVMWEB_GUEST_INFO_SECONDS: served from the cache; the only libvirt call is the lookup (which tells this
    # run of the VM from the next), no state read and no agent or lease call
    before = calls()
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(f"/api/v1/vms/{agent_vm.uuid}/guest/").json()
    assert calls() - before == 1
    assert body["agent"] is False and body["running"] is True
    assert body["error"] == "The guest agent is not connected: it is not installed or not running in the guest."
    assert body["os_name"] == body["hostname"] == "" and body["filesystems"] == []
    # memtest asks for no DHCP lease, and its NIC-less definition has none to ask for
    assert body["interfaces"] == []
    assert client.get(f"/vms/{agent_vm.uuid}/part/guest/").status_code == 200 and calls() - before == 2
    assert api.get(f"/api/v1/vms/{agent_vm.uuid}/guest/").json()["read_at"] == body["read_at"]

    # stopped and started again behind the portal's back: a new run, read afresh
    virsh("destroy", agent_vm.name)
    assert api.get(f"/api/v1/vms/{agent_vm.uuid}/guest/").json()["error"] == "The VM is not running."
    virsh("start", agent_vm.name)
    before = calls()
    again = api.get(f"/api/v1/vms/{agent_vm.uuid}/guest/").json()
    assert calls() - before >= 4 and again["read_at"] != body["read_at"] and again["running"] is True
