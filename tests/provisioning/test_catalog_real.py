"""Real: a private template of a shut-off VM on qemu:///system (the job run in this process): its image is a full,
independent qcow2 copy of the VM's disk in the run's image pool, counted in the owner's quota; deleting the template
is refused while a disk is linked to the image, then removes the image's volume."""
from __future__ import annotations

import os
import subprocess

import pytest
from django.conf import settings

from kvmweb.accounts.selectors import quota_usage
from kvmweb.core.errors import ConflictError
from kvmweb.jobs.models import Job
from kvmweb.media.models import IsoImage
from kvmweb.provisioning import catalog
from kvmweb.provisioning.models import Template
from tests.conftest import memtest_spec, unique_name, virsh
from tests.storage.conftest import qemu_img_info

pytestmark = pytest.mark.real
M = 1024**2


def test_template_of_a_shut_off_vm(transactional_db, qemu_host, owner, real_vm, test_pool, image_pool_dir,  # type: ignore[no-untyped-def]
                                   eager) -> None:
    # the VM's disk is itself a linked clone (an overlay on a base holding data): the template must flatten it
    base, disk = f"{unique_name('base')}.qcow2", f"{unique_name('src')}.qcow2"
    virsh("vol-create-as", test_pool["name"], base, "128M", "--format", "qcow2")
    base_path = os.path.join(test_pool["path"], base)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 8M", base_path], check=True, capture_output=True)
    virsh("vol-create-as", test_pool["name"], disk, "128M", "--format", "qcow2", "--backing-vol", base_path,
          "--backing-vol-format", "qcow2")
    disk_path = os.path.join(test_pool["path"], disk)
    subprocess.run(["qemu-io", "-c", "write -P 0xa5 64M 4M", disk_path], check=True, capture_output=True)
    vm = real_vm(memtest_spec(disk=disk_path))
    name = unique_name("tpl")
    volume = f"{name}.qcow2"
    image_path = os.path.join(image_pool_dir, volume)
    linked = f"{unique_name('linked')}.qcow2"
    try:
        result = catalog.template_from_vm(actor=owner, vm=vm, name=name)  # eager: the job runs on commit, here
        job = Job.objects.get(pk=result.job.pk)
        assert job.state == Job.State.SUCCEEDED, (job.error, list(job.lines.values_list("message", flat=True)))
        assert job.progress == 100
        template = Template.objects.get(pk=result.template.pk)
        image = template.image
        assert (template.owner, template.public, image.complete, image.public) == (owner, False, True, False)
        assert image.path == image_path and os.path.exists(image_path)
        assert volume in virsh("vol-list", settings.KVMWEB_IMAGE_POOL)
        info = qemu_img_info(image_path)
        assert info["format"] == "qcow2" and info.get("backing-filename") is None  # a full, independent copy
        assert info["virtual-size"] == 128 * M == image.virtual_size
        compare = subprocess.run(["qemu-img", "compare", disk_path, image_path], capture_output=True, text=True)
        assert compare.returncode == 0 and "identical" in compare.stdout, compare.stdout + compare.stderr
        assert quota_usage(owner).disk_bytes >= 128 * M  # the copy is alice's
        # a disk linked to the image (a VM made from the template in linked mode): the template stays
        virsh("vol-create-as", test_pool["name"], linked, "128M", "--format", "qcow2", "--backing-vol", image_path,
              "--backing-vol-format", "qcow2")
        with pytest.raises(ConflictError) as used:
            catalog.template_delete(actor=owner, template=template)
        assert used.value.code == "in_use" and "1 disk linked to it" in used.value.detail
        assert os.path.exists(image_path)
        virsh("vol-delete", linked, "--pool", test_pool["name"])
        catalog.template_delete(actor=owner, template=template)
        assert not os.path.exists(image_path)
        assert volume not in virsh("vol-list", settings.KVMWEB_IMAGE_POOL)
        assert not IsoImage.objects.filter(pk=image.pk).exists()
    finally:
        virsh("vol-delete", linked, "--pool", test_pool["name"], check=False)
        virsh("vol-delete", volume, "--pool", settings.KVMWEB_IMAGE_POOL, check=False)
        virsh("undefine", vm.name, check=False)
        virsh("vol-delete", disk, "--pool", test_pool["name"], check=False)
        virsh("vol-delete", base, "--pool", test_pool["name"], check=False)
