"""Fast tests of "New VM from a template / image" on libvirt's test driver: the document (linked-clone disk on
virtio, the seed as a SCSI CD-ROM named in the metadata, direct kernel boot, the guest-agent channel), the job that
makes the overlay and the seed and the delete that removes the seed, and the refusals (visibility, host, sizes,
cloud-init fields, quota) — each before anything is made."""
from __future__ import annotations

import pytest

from kvmweb import hypervisor as hv
from kvmweb.accounts.models import Quota
from kvmweb.core.errors import ConflictError, ValidationError
from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from kvmweb.provisioning import cloudinit
from kvmweb.provisioning.models import Flavor, Template
from kvmweb.provisioning.services import vm_create, vm_create_validate
from tests.conftest import PREFIX, unique_name

pytestmark = pytest.mark.django_db
TEST_URI = "test:///default"
GiB = 1024**3


def _pool() -> hv.Pool:
    return hv.pool_lookup(hv.registry.connection(TEST_URI), "default-pool")


def _names() -> set[str]:
    return {row.name for row in hv.domain_list(hv.registry.connection(TEST_URI), sizes=False)}


@pytest.fixture
def template(test_host, staff, open_testdrv, testdrv_volumes):  # type: ignore[no-untyped-def]
    """A public template on the test driver's host: a 2 GiB qcow2 image with a kernel, flavor 1 vCPU/256 MiB/4 GiB."""
    pool = _pool()
    image = pool.create_volume(hv.VolumeSpec(name=f"{PREFIX}base.qcow2", capacity=2 * GiB))
    kernel = pool.create_volume(hv.VolumeSpec(name=f"{PREFIX}vmlinuz", capacity=1 << 20, format="raw"))
    row = IsoImage.objects.create(kind=IsoImage.Kind.IMAGE, host=test_host, name="base", path=image.path,
                                  size=1 << 20, uploaded=1 << 20, complete=True, registered=True, added_by=staff,
                                  format="qcow2", virtual_size=2 * GiB, os_variant="debian11", kernel=kernel.path,
                                  initrd=kernel.path)
    flavor = Flavor.objects.create(name="small", vcpus=1, memory_mib=256, disk_bytes=4 * GiB)
    return Template.objects.create(name="base", image=row, flavor=flavor, cloud_init=True, public=True)


def test_a_template_request_gets_the_flavor_the_seed_the_kernel_and_the_agent(template, owner) -> None:  # type: ignore[no-untyped-def]
    req = vm_create_validate(actor=owner, host=None, name="web1", template=template.pk, disk_pool="default-pool",
                             cloud_init={"hostname": "web-1", "user": "alice", "ssh_keys": []})
    assert (req.vcpus, req.memory_mib, req.disk and req.disk.size) == (1, 256, 4 * GiB)
    assert req.disk and req.disk.linked and req.disk.image == template.image.path
    assert req.seed and req.seed.name == "web1-cidata.iso" and "local-hostname: web-1" in req.seed.meta_data
    assert req.kernel_boot and req.kernel_boot.cmdline == "root=/dev/vda ro console=ttyS0"
    from kvmweb.provisioning.services import build_document

    doc = build_document(req, uuid="9b4f3f5e-3a57-4c1e-9a53-1f0f7a3f2b10", domain_type="qemu")
    disk, seed = doc.disks
    assert (disk.bus, disk.target, seed.device, seed.bus) == ("virtio", "vda", "cdrom", "scsi")
    assert doc.seed_path == seed.source == req.seed.path
    assert [c.model for c in doc.devices_of(hv.Controller) if c.kind == "scsi"] == ["virtio-scsi"]
    assert sum(c.target_name == hv.GUEST_AGENT_CHANNEL for c in doc.channels) == 1
    assert doc.kernel == template.image.kernel


def test_a_job_that_fails_at_the_seed_undoes_the_overlay_the_seed_and_the_domain(  # type: ignore[no-untyped-def]
    template, owner, eager, django_capture_on_commit_callbacks,
) -> None:
    """The test driver cannot upload into a volume: the job fails writing the seed, after the overlay and the
    seed's volume were made — and undoes both and the domain (the real tests make it succeed)."""
    name = unique_name()
    before = {v.name for v in _pool().volumes()}
    with django_capture_on_commit_callbacks(execute=True):
        created = vm_create(actor=owner, host=None, name=name, template=template.pk, disk_pool="default-pool",
                            start=False, cloud_init={"hostname": "web-1"})
    created.job.refresh_from_db()
    assert created.job.state == Job.State.FAILED
    log = [line.message for line in created.job.lines.all()]
    assert any("linked clone" in m for m in log) and any("cloud-init seed" in m for m in log), log
    assert name not in _names() and {v.name for v in _pool().volumes()} == before


@pytest.mark.parametrize(("fields", "field"), [
    ({"cloud_init": {"hostname": "bad_name"}}, "cloud_init.hostname"),
    ({"cloud_init": {"ssh_keys": ["ssh-rsa AAAA"]}}, "cloud_init.ssh_keys"),
    ({"cloud_init": {"ssh_keys": [424242]}}, "cloud_init.ssh_keys"),
    ({"cloud_init": {"user_data": "runcmd: [ls]"}}, "cloud_init.user_data"),
    ({"cloud_init": {"user_data": "#cloud-config\n- a list"}}, "cloud_init.user_data"),
    ({"cloud_init": {"password": "short"}}, "cloud_init.password"),
    ({"cloud_init": {"nonsense": 1}}, "cloud_init"),
    ({"disk_size": "1G"}, "disk_size"),
    ({"clone_mode": "sideways"}, "clone_mode"),
    ({"iso": 1}, "iso"),
    ({"flavor": 999999}, "flavor"),
])
def test_refusals_name_their_field_and_make_nothing(template, owner, fields, field) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    before = {v.name for v in _pool().volumes()}
    with pytest.raises(ValidationError) as refused:
        vm_create(actor=owner, host=None, name=name, template=template.pk, disk_pool="default-pool", **fields)
    assert field in (refused.value.fields or {}), refused.value.fields
    assert name not in _names() and {v.name for v in _pool().volumes()} == before and not Job.objects.exists()


def test_private_templates_and_images_are_their_owners_and_a_flavor_is_held_to_the_quota(  # type: ignore[no-untyped-def]
    template, owner, other_user,
) -> None:
    template.public, template.owner = False, other_user
    template.save()
    with pytest.raises(ValidationError) as refused:
        vm_create_validate(actor=owner, host=None, name="x1", template=template.pk, disk_pool="default-pool")
    assert "template" in (refused.value.fields or {})
    template.image.public, template.image.added_by = False, other_user
    template.image.save()
    with pytest.raises(ValidationError) as refused:
        vm_create_validate(actor=owner, host=None, name="x1", image=template.image.pk, disk_pool="default-pool")
    assert "image" in (refused.value.fields or {})
    Quota.objects.create(user=other_user, max_memory_mib=128)
    with pytest.raises(ConflictError) as over:
        vm_create_validate(actor=other_user, host=None, name="x1", template=template.pk, disk_pool="default-pool")
    assert over.value.code == "quota"


def test_the_plain_password_never_reaches_the_seed(template, owner) -> None:  # type: ignore[no-untyped-def]
    req = vm_create_validate(actor=owner, host=None, name="web1", template=template.pk, disk_pool="default-pool",
                             cloud_init={"password": "correct horse battery"})
    assert req.seed and "correct horse battery" not in req.seed.user_data
    from passlib.hash import sha512_crypt

    hashed = cloudinit.user_data_parse(req.seed.user_data)["users"][0]["passwd"]
    assert sha512_crypt.verify("correct horse battery", hashed)

