"""New VMs on "any host" (the wizard's choice, ``host: "any"`` or no host with several): placement picks the host
that has the pool and network asked for and the most memory left; the choice and why are in the job's log; a host in
maintenance gets no new VMs, chosen or placed."""
from __future__ import annotations

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from kvmweb.machines.models import VirtualMachine
from kvmweb.provisioning.services import vm_create
from tests.conftest import unique_name


def _lines(job: Job) -> str:
    return " | ".join(job.lines.values_list("message", flat=True))


def test_any_host_is_placed_and_the_log_says_why(owner, open_testdrv, test_host, small_host, eager, testdrv_volumes,  # type: ignore[no-untyped-def]
                                                 django_capture_on_commit_callbacks) -> None:
    name = unique_name()
    with django_capture_on_commit_callbacks(execute=True):  # the pool is only on test:///default
        created = vm_create(actor=owner, host="any", name=name, vcpus=1, memory="256", disk_size="1",
                            disk_pool="default-pool", network="default", start=False)
    job = Job.objects.get(pk=created.job.pk)
    assert job.state == "succeeded", job.error
    assert created.vm.host == test_host
    assert "Placed on testdrv: it fits with the most memory left" in _lines(job)
    assert "small: no — no pool default-pool" in _lines(job)
    hv.domain_lookup(hv.registry.connection(test_host.uri), str(created.vm.uuid)).undefine()


def test_api_without_a_host_places_among_several(owner, test_host, small_host, alice_api) -> None:  # type: ignore[no-untyped-def]
    reply = alice_api.post("/api/v1/vms/", {"name": unique_name(), "memory": "256", "start": False}, format="json")
    assert reply.status_code == 202, reply.content
    vm = VirtualMachine.objects.get(uuid=reply.json()["uuid"])
    assert vm.host == small_host  # no pool or network asked: the most memory left (1.25 GiB against 0.75 GiB)
    hv.domain_lookup(hv.registry.connection(small_host.uri), str(vm.uuid)).undefine()


def test_a_host_in_maintenance_gets_no_new_vms(owner, test_host, small_host, alice_api) -> None:  # type: ignore[no-untyped-def]
    small_host.maintenance = True
    small_host.save()
    body = {"name": unique_name(), "memory": "256", "start": False, "host": small_host.pk}
    reply = alice_api.post("/api/v1/vms/", body, format="json")
    assert reply.status_code == 400
    assert reply.json()["fields"]["host"] == [
        "small is in maintenance: it gets no new VMs; choose another host, or any host"]
    test_host.maintenance = True
    test_host.save()
    reply = alice_api.post("/api/v1/vms/", {**body, "host": "any"}, format="json")
    assert reply.status_code == 400
    assert reply.json()["fields"]["host"] == ["No host fits: small: no — in maintenance; testdrv: no — in maintenance."]
    assert not VirtualMachine.objects.exists()
