"""Newcomer defaults on qemu:///system: after ``manage.py bootstrap`` on a fresh database, a brand-new user creates a
VM with a disk through the API, with no staff step. The default pool is this run's prefixed pool in a temporary
folder (tests.conftest.default_pool_dir), never libvirt's real ``default``."""
from __future__ import annotations

import os
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from kvmweb.jobs.models import Job
from tests.conftest import SYSTEM, unique_name, virsh
from tests.provisioning.helpers import wait_job

pytestmark = [pytest.mark.real]


@pytest.mark.django_db(transaction=True)
def test_a_new_user_makes_a_vm_with_a_disk_right_after_bootstrap(
    default_pool_dir, settings, monkeypatch, django_user_model, celery_worker_proc, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host

    assert not Host.objects.exists()  # a fresh database
    settings.KVMWEB_LIBVIRT_URIS = [SYSTEM]
    monkeypatch.setenv("KVMWEB_ADMIN_USER", "kvmwebtest-admin")
    monkeypatch.setenv("KVMWEB_ADMIN_PASSWORD", "kvmwebtest-admin-pass-123")
    pool, folder = default_pool_dir["name"], default_pool_dir["path"]
    out = StringIO()
    call_command("bootstrap", stdout=out)
    assert f"Storage pool {pool} ({folder}) created; opened to every user." in out.getvalue(), out.getvalue()
    info = virsh("pool-info", pool)
    assert "running" in info and "Autostart:      yes" in info, info
    assert os.path.isdir(folder)
    assert f"<path>{folder}</path>" in virsh("pool-dumpxml", pool)

    newcomer = django_user_model.objects.create_user(username="carol", password="carol-pass-123")
    client = Client()
    client.force_login(newcomer)
    name = unique_name("new")
    cleanup_domains.append(name)
    host = Host.objects.get(uri=SYSTEM)
    host.domain_type = "qemu"
    host.save()
    # The wizard offers the pool; the API needs no pool named either: a disk goes to the default pool.
    response = client.post("/api/v1/vms/", {"host": host.pk, "name": name, "memory": "64", "disk_size": "64M",
                                            "start": False}, content_type="application/json")
    assert response.status_code == 202, response.content
    job = wait_job(response.json()["job"]["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    disk = f"{folder}/{name}.qcow2"
    assert f"{name}.qcow2" in virsh("vol-list", pool)
    assert disk in virsh("domblklist", name)
    virsh("undefine", name)
    virsh("vol-delete", f"{name}.qcow2", "--pool", pool)
