"""Real guests on qemu:///system, cross-checked with virsh: memtest86+ under TCG, GRUB rescue under KVM."""
from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from tests.conftest import GRUB_ISO, kvm_usable, memtest_spec, unique_name, virsh

pytestmark = pytest.mark.real


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def virsh_fields(*args: str) -> dict[str, str]:
    out = virsh(*args)
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}


@pytest.fixture
def api(owner) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(owner)
    return client


def test_memtest_guest_start_info_force_off_delete_keeping_disk(api, real_vm, make_volume) -> None:  # type: ignore[no-untyped-def]
    disk = make_volume(size="64M")
    vm = real_vm(memtest_spec(disk=disk))
    url = f"/api/v1/vms/{vm.uuid}/"

    assert api.post(url + "start/").status_code == 200
    assert virsh("domstate", vm.name).strip() == "running"
    detail = api.get(url).json()
    dominfo = virsh_fields("dominfo", vm.name)
    assert str(detail["id"]) == dominfo["Id"]
    assert detail["name"] == dominfo["Name"] and detail["uuid"] == dominfo["UUID"]
    assert detail["os_type"] == dominfo["OS Type"] and detail["state_label"] == dominfo["State"]
    assert str(detail["vcpus"]) == dominfo["CPU(s)"]
    assert f"{detail['max_memory_kib']} KiB" == dominfo["Max memory"]
    assert f"{detail['used_memory_kib']} KiB" == dominfo["Used memory"]
    assert ("yes" if detail["persistent"] else "no") == dominfo["Persistent"]
    assert ("enable" if detail["autostart"] else "disable") == dominfo["Autostart"]
    assert ("yes" if detail["managed_save"] else "no") == dominfo["Managed save"]
    assert detail["security_model"] == dominfo["Security model"]
    assert detail["security_doi"] == dominfo["Security DOI"]

    blk = [line.split() for line in virsh("domblklist", vm.name, "--details").splitlines() if line.strip()]
    ours = [[b["type"], b["device"], b["target"], b["source"] or "-"] for b in detail["block_devices"]]
    assert ours == blk
    # listen type none: no TCP port, virsh vncdisplay has nothing to print; the portal says "console via portal"
    assert detail["vnc_display"] is None and detail["vnc_listen"] == "none"
    assert virsh("vncdisplay", vm.name, check=False).strip() == ""

    # the page shows the same, and the guest really runs: its screen is not a single flat colour
    png = hv.domain_lookup(hv.registry.connection("qemu:///system"), str(vm.uuid)).screenshot_png()
    assert png.startswith(b"\x89PNG")

    r = api.post(url + "force-off/")
    assert r.status_code == 200 and r.json()["state"] == "shutoff"
    assert virsh("domstate", vm.name).strip() == "shut off"
    r = api.delete(url + "?delete_volumes=false")
    assert r.status_code == 200 and r.json()["deleted_volumes"] == []
    assert vm.name not in virsh("list", "--all", "--name").split()
    assert os.path.exists(disk), "the disk must stay when 'also delete its disk volumes' is off"


def test_delete_with_volumes_removes_disk_but_not_iso(api, real_vm, make_volume) -> None:  # type: ignore[no-untyped-def]
    disk = make_volume(size="32M")
    vm = real_vm(memtest_spec(disk=disk))
    r = api.delete(f"/api/v1/vms/{vm.uuid}/?delete_volumes=true")
    assert r.status_code == 200, r.json()
    assert r.json()["deleted_volumes"] == [disk]
    assert not os.path.exists(disk)
    assert os.path.exists("/usr/lib/memtest86+/memtest86+x64.iso")
    assert vm.name not in virsh("list", "--all", "--name").split()


def test_running_vm_cannot_be_deleted(api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    api.post(f"/api/v1/vms/{vm.uuid}/start/")
    r = api.delete(f"/api/v1/vms/{vm.uuid}/?delete_volumes=true")
    assert r.status_code == 409 and "force it off first" in r.json()["detail"]
    assert virsh("domstate", vm.name).strip() == "running"
    api.post(f"/api/v1/vms/{vm.uuid}/force-off/")


def test_vnc_on_loopback_matches_vncdisplay(api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec(graphics="address"))
    api.post(f"/api/v1/vms/{vm.uuid}/start/")
    try:
        detail = api.get(f"/api/v1/vms/{vm.uuid}/").json()
        assert detail["vnc_display"] == virsh("vncdisplay", vm.name).strip()
        assert detail["vnc_display"].startswith("127.0.0.1:")
    finally:
        api.post(f"/api/v1/vms/{vm.uuid}/force-off/")


def test_autostart_toggle_matches_virsh(api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    assert api.post(f"/api/v1/vms/{vm.uuid}/autostart/", {"enabled": True}, format="json").status_code == 200
    assert virsh_fields("dominfo", vm.name)["Autostart"] == "enable"
    api.post(f"/api/v1/vms/{vm.uuid}/autostart/", {"enabled": False}, format="json")
    assert virsh_fields("dominfo", vm.name)["Autostart"] == "disable"


@pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is not usable on this machine")
def test_kvm_guest_grub_rescue_starts_and_forces_off(api, real_vm, qemu_host) -> None:  # type: ignore[no-untyped-def]
    assert qemu_host.effective_domain_type == "kvm"
    vm = real_vm(memtest_spec(iso=GRUB_ISO, domain_type="kvm", memory_kib=128 * 1024))
    assert api.post(f"/api/v1/vms/{vm.uuid}/start/").status_code == 200
    try:
        assert virsh("domstate", vm.name).strip() == "running"
        assert "<domain type='kvm'" in virsh("dumpxml", vm.name)
        # the guest keeps running under KVM (no emulation failure) for a few seconds
        time.sleep(3)
        assert virsh("domstate", vm.name).strip() == "running"
    finally:
        assert api.post(f"/api/v1/vms/{vm.uuid}/force-off/").status_code == 200
    assert virsh("domstate", vm.name).strip() == "shut off"


def _restart_libvirtd() -> None:
    if os.path.isdir("/run/systemd/system"):
        subprocess.run(["systemctl", "restart", "libvirtd"], check=True)
    else:
        # this namespace's libvirtd only: the second host's (tests/secondhost.py) runs in a PID namespace of its own
        ours = ["-x", "libvirtd", "--ns", str(os.getpid()), "--nslist", "pid"]
        subprocess.run(["pkill", *ours], check=False)
        wait_for(lambda: subprocess.run(["pgrep", *ours], capture_output=True).returncode != 0,
                 what="libvirtd to stop")
        subprocess.run(["libvirtd", "-d"], check=True)
    wait_for(lambda: subprocess.run(["virsh", "-c", "qemu:///system", "uri"], capture_output=True).returncode == 0,
             what="libvirtd to answer")


def test_portal_survives_libvirtd_restart(api, real_vm) -> None:  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec(name=unique_name("restart")))
    assert api.get("/api/v1/vms/").status_code == 200
    _restart_libvirtd()
    r = api.get("/api/v1/vms/")
    assert r.status_code == 200, r.json()
    assert vm.name in [row["name"] for row in r.json()["results"]]
    assert api.get(f"/api/v1/vms/{vm.uuid}/").status_code == 200
    assert re.match(r"^\d+\.\d+", hv.host_facts(hv.registry.connection("qemu:///system")).libvirt_version)
