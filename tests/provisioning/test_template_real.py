"""A ready VM from a template on qemu:///system: a real Debian 12 cloud guest (cloud-init + guest agent, TCG) made
as a linked clone with a NoCloud seed, through the API and a real Celery worker; what cloud-init did is read back
through the guest agent, never the network. Bad input is refused before anything is made."""
from __future__ import annotations

import json
import subprocess

import pytest
from django.test import Client

from kvmweb import hypervisor as hv
from kvmweb.accounts.models import SshKey
from kvmweb.accounts.sshkeys import ssh_key_add
from kvmweb.jobs.models import Job
from tests.conftest import unique_name, virsh
from tests.provisioning.helpers import guest_run, wait_agent_hostname, wait_job

pytestmark = [pytest.mark.real]

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJXa32px/1gjmYM8kgv1pDOG+PGzdvdq8y9FcxY0UDKQ"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDcX4mmvvp1/nd5yk+vXE02fLa1LmWWW4MoXqx1nZwP1"


def _volumes(pool: str) -> set[str]:
    return {line.split()[0] for line in virsh("vol-list", pool).splitlines() if line.split()}


def _post(client: Client, body: dict) -> object:  # type: ignore[type-arg]
    return client.post("/api/v1/vms/", body, content_type="application/json")


@pytest.mark.django_db(transaction=True)
def test_two_vms_from_a_template_get_their_own_hostname_user_and_exactly_the_chosen_keys(
    cloud_template, owner, test_pool, open_test_pool, celery_worker_proc, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    key_a = ssh_key_add(actor=owner, name="laptop", public_key=KEY_A + " me@laptop").key
    ssh_key_add(actor=owner, name="desktop", public_key=KEY_B)
    assert SshKey.objects.filter(user=owner).count() == 2
    client = Client()
    client.force_login(owner)
    names = [unique_name("tpl"), unique_name("tpl")]
    cleanup_domains.extend(names)
    before = _volumes(test_pool["name"])
    jobs = []
    for number, name in enumerate(names, 1):
        response = _post(client, {
            "name": name, "template": cloud_template.pk, "disk_pool": test_pool["name"],
            "cloud_init": {"hostname": f"web-{number}", "user": "alice", "ssh_keys": [key_a.pk]},
        })
        assert response.status_code == 202, response.content  # type: ignore[attr-defined]
        jobs.append(response.json()["job"]["id"])  # type: ignore[attr-defined]
    for pk in jobs:
        job = wait_job(pk, timeout=120)
        assert job.state == Job.State.SUCCEEDED, job.error
    for name in names:
        doc = hv.DomainDocument.from_xml(virsh("dumpxml", "--inactive", name))
        disk, seed = doc.disks[0], doc.disks[1]
        # a linked clone of the library image, grown to the flavor's 3 GiB
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U", disk.source or ""],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["backing-filename"] == cloud_template.image.path
        assert info["virtual-size"] == 3 * 1024**3
        assert (seed.device, seed.bus, seed.source) == ("cdrom", "scsi", doc.seed_path)
        assert doc.kernel == cloud_template.image.kernel and doc.vcpus == 1 and doc.memory_mib == 256
        assert any(c.target_name == hv.GUEST_AGENT_CHANNEL for c in doc.channels)
    for number, name in enumerate(names, 1):
        assert wait_agent_hostname(name) == f"web-{number}"  # its own instance-id: cloud-init ran for each
        code, out = guest_run(name, "/bin/cat", "/home/alice/.ssh/authorized_keys")
        assert code == 0
        assert [line.split()[:2] for line in out.splitlines() if line.strip()] == [KEY_A.split()]
        code, out = guest_run(name, "/usr/bin/id", "-un", "alice")
        assert (code, out.strip()) == (0, "alice")
    made = _volumes(test_pool["name"]) - before
    assert made == {f"{n}.qcow2" for n in names} | {f"{n}-cidata.iso" for n in names}
    # delete: the seed always goes, the disk because it is asked for; the template's image stays
    for name in names:
        uuid = virsh("domuuid", name).strip()
        virsh("destroy", name)
        response = client.delete(f"/api/v1/vms/{uuid}/?delete_volumes=true")
        assert response.status_code in (200, 204), response.content
    assert _volumes(test_pool["name"]) == before
    assert cloud_template.image.path.rsplit("/", 1)[1] in before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("change", "field"), [
    ({"cloud_init": {"ssh_keys": ["ssh-ed25519 AAAAnotakey"]}}, "cloud_init.ssh_keys"),
    ({"cloud_init": {"hostname": "-bad_host-"}}, "cloud_init.hostname"),
    ({"cloud_init": {"user_data": "#cloud-config\nruncmd: [unclosed"}}, "cloud_init.user_data"),
    ({"cloud_init": {"user_data": "#cloud-config\n" + "a: b\n" * 9000}}, "cloud_init.user_data"),
    ({"cloud_init": {"user": "root"}}, "cloud_init.user"),
    ({"disk_size": "1G"}, "disk_size"),  # below the image's size: never shrunk
    ({"template": 999999}, "template"),
])
def test_bad_input_is_refused_before_anything_is_made(
    cloud_template, owner, test_pool, open_test_pool, change, field,
) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(owner)
    name = unique_name("bad")
    before = _volumes(test_pool["name"])
    body = {"name": name, "template": cloud_template.pk, "disk_pool": test_pool["name"], "start": False, **change}
    response = _post(client, body)
    assert response.status_code == 400, response.content  # type: ignore[attr-defined]
    assert field in response.json()["fields"], response.json()  # type: ignore[attr-defined]
    assert virsh("domstate", name, check=False) == "" and Job.objects.count() == 0
    assert _volumes(test_pool["name"]) == before


@pytest.mark.django_db(transaction=True)
def test_a_template_whose_image_left_the_host_and_a_flavor_above_quota_are_refused(
    cloud_template, owner, test_pool, open_test_pool,
) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.accounts.models import Quota
    from kvmweb.provisioning.models import Flavor

    client = Client()
    client.force_login(owner)
    Quota.objects.create(user=owner, max_memory_mib=512)
    big = Flavor.objects.create(name="big", vcpus=1, memory_mib=1024, disk_bytes=3 * 1024**3)
    name = unique_name("quo")
    response = _post(client, {"name": name, "template": cloud_template.pk, "flavor": big.pk,
                              "disk_pool": test_pool["name"], "start": False})
    assert response.status_code == 409 and response.json()["error"] == "quota", response.content
    image = cloud_template.image
    image.path = image.path + ".gone"
    image.save()
    response = _post(client, {"name": name, "template": cloud_template.pk, "disk_pool": test_pool["name"],
                              "start": False})
    assert response.status_code == 400 and "missing" in response.json()["fields"]["template"][0], response.content
    assert virsh("domstate", name, check=False) == "" and Job.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_clone_does_not_own_the_seed_and_a_delete_keeps_a_seed_another_vm_uses(
    qemu_host, owner, test_pool, cleanup_domains,
) -> None:  # type: ignore[no-untyped-def]
    """A clone (or a VM restored from a backup) keeps the original's seed in its drive without claiming it: deleting
    the original keeps the seed while the clone uses it, and deleting the clone never deletes it."""
    from kvmweb.machines.services import vm_define, vm_delete
    from tests.conftest import PREFIX, memtest_spec

    seed = f"{PREFIX}{unique_name('seed')}-cidata.iso"
    virsh("vol-create-as", test_pool["name"], seed, "64K", "--format", "raw")
    path = virsh("vol-path", seed, "--pool", test_pool["name"]).strip()
    doc = memtest_spec()
    doc.add_device(hv.Controller.scsi())
    doc.add_device(hv.Disk.new(target="sdb", device="cdrom", bus="scsi", source=path, format="raw"))
    doc.seed_path = path
    clone = doc.clone_as(name=unique_name("cln"), uuid="7d3f4b5c-1a2b-4c3d-8e9f-0a1b2c3d4e5f", disk_sources={})
    assert clone.seed_path is None and path in [d.source for d in clone.disks]
    cleanup_domains.extend([doc.name, clone.name])
    original_vm = vm_define(actor=owner, host=qemu_host, doc=doc)
    clone_vm = vm_define(actor=owner, host=qemu_host, doc=clone)
    kept = vm_delete(actor=owner, vm=original_vm)  # the clone still has the seed in a drive
    assert seed in _volumes(test_pool["name"]) and any(path in k for k in kept.kept), kept.kept
    vm_delete(actor=owner, vm=clone_vm)  # the clone never claimed it
    assert seed in _volumes(test_pool["name"])
    virsh("vol-delete", seed, "--pool", test_pool["name"])
