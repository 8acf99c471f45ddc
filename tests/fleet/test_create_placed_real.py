"""A new VM on "any host" with two real libvirt hosts: placed on the one that fits (host 1 is in maintenance; host 2
has the pool asked for), made and started there, its record on that host, the choice and why in the job's log."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.jobs.models import Job
from kvmweb.provisioning.services import vm_create
from tests.conftest import unique_name, virsh

pytestmark = [pytest.mark.real]


def test_any_host_places_a_new_vm_on_the_second_host(two_hosts, own_disks, second_host, staff, eager,  # type: ignore[no-untyped-def]
                                                     django_capture_on_commit_callbacks) -> None:
    local, second = two_hosts
    local.maintenance = True
    local.save()
    name = unique_name()
    with django_capture_on_commit_callbacks(execute=True):
        created = vm_create(actor=staff, host="any", name=name, memory="64", disk_size="64M",
                            disk_pool=own_disks["name"], start=True)
    job = Job.objects.get(pk=created.job.pk)
    assert job.state == "succeeded", job.error
    assert created.vm.host == second
    lines = " | ".join(job.lines.values_list("message", flat=True))
    assert "Placed on second" in lines and "local: no — in maintenance" in lines
    assert virsh("domstate", name, uri=second_host.tcp_uri).strip() == "running"
    assert name not in virsh("list", "--all", "--name").split()  # nothing on host 1
    disk = hv.domain_lookup(hv.registry.connection(second.uri), str(created.vm.uuid)).definition().disks[0]
    assert disk.source.startswith(own_disks["path"])
