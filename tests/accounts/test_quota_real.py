"""A quota on qemu:///system: a user allowed one VM creates it through the API (job run eagerly); the second
create is refused with the quota message and libvirt has no second domain."""
from __future__ import annotations

import pytest
from django.test import Client

from kvmweb.accounts.models import Quota
from kvmweb.accounts.selectors import quota_usage
from kvmweb.jobs.models import Job
from tests.conftest import unique_name, virsh

pytestmark = [pytest.mark.real, pytest.mark.django_db]


def test_second_create_over_max_vms_is_refused(qemu_host, owner, test_pool, open_test_pool, eager, cleanup_domains,
                                               django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    Quota.objects.create(user=owner, max_vms=1, max_disk_gib=1)
    first, second = unique_name("quota"), unique_name("quota")
    cleanup_domains.extend([first, second])
    client = Client()
    client.force_login(owner)

    def create(name: str):  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/v1/vms/", {
                "host": qemu_host.pk, "name": name, "vcpus": 1, "memory": "64", "disk_size": "64M",
                "disk_format": "qcow2", "disk_pool": test_pool["name"], "start": False,
            }, content_type="application/json")

    try:
        response = create(first)
        assert response.status_code == 202, response.content
        job = Job.objects.get(pk=response.json()["job"]["id"])
        assert job.state == Job.State.SUCCEEDED, job.error
        usage = quota_usage(owner)
        assert (usage.vms, usage.vcpus, usage.memory_mib, usage.disk_bytes) == (1, 1, 64, 64 * 1024**2)

        response = create(second)
        assert response.status_code == 409, response.content
        body = response.json()
        assert body["error"] == "quota"
        assert body["detail"] == "Your quota allows 1 VMs; you have 1 and this would make 2."
        names = virsh("list", "--all", "--name").split()
        assert first in names and second not in names
        assert f"{second}.qcow2" not in virsh("vol-list", test_pool["name"])
    finally:
        virsh("vol-delete", f"{first}.qcow2", "--pool", test_pool["name"], check=False)
