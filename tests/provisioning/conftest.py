from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.jobs.conftest import eager  # noqa: F401
from tests.media.conftest import memtest_iso  # noqa: F401


@pytest.fixture
def test_iso(test_host, staff):  # type: ignore[no-untyped-def]
    """An ISO library entry on the test driver's host (its files are imaginary: the test driver never reads them)."""
    from kvmweb.media.models import IsoImage

    return IsoImage.objects.create(host=test_host, name="install.iso", path="/isos/install.iso", size=1 << 20,
                                   uploaded=1 << 20, complete=True, registered=True, added_by=staff)


@pytest.fixture
def testdrv_volumes() -> Iterator[None]:
    """Remove prefixed volumes the test driver's default pool got during the test."""
    yield
    from kvmweb import hypervisor as hv
    from tests.conftest import PREFIX

    pool = hv.pool_lookup(hv.registry.connection("test:///default"), "default-pool")
    for vol in pool.volumes():
        if vol.name.startswith(PREFIX):
            pool.volume(vol.name).delete()


@pytest.fixture
def open_testdrv(test_host):  # type: ignore[no-untyped-def]
    """Staff opened the test driver's pool and network to every user."""
    from kvmweb.networks.models import AllowedNetwork
    from kvmweb.storage.models import PoolAccess

    PoolAccess.objects.create(host=test_host, pool="default-pool", everyone=True)
    AllowedNetwork.objects.create(host=test_host, name="default")
    return test_host


@pytest.fixture
def open_test_pool(qemu_host, test_pool):  # type: ignore[no-untyped-def]
    """Staff opened the real tests' storage pool to every user."""
    from kvmweb.storage.models import PoolAccess

    PoolAccess.objects.create(host=qemu_host, pool=test_pool["name"], everyone=True)
    return test_pool


CLOUD_IMAGE_FILES = ("base.qcow2", "vmlinuz", "initrd")


@pytest.fixture(scope="session")
def cloud_image_files(test_pool):  # type: ignore[no-untyped-def]
    """The real cloud-init test guest (scripts/cloud-image.sh: Debian 12, cloud-init, qemu-guest-agent; built once
    per machine into var/cloud-image by `scripts/setup.sh --test`), copied into the run's test pool: path by file."""
    import shutil
    from pathlib import Path

    from tests.conftest import PREFIX, virsh

    from django.conf import settings

    source = Path(settings.VAR_DIR) / "cloud-image"
    missing = [f for f in CLOUD_IMAGE_FILES if not (source / f).is_file()]
    if missing:
        pytest.fail(f"the cloud test image is missing ({', '.join(missing)} in {source}): run scripts/cloud-image.sh "
                    "(`make test` does)")
    paths = {}
    for name in CLOUD_IMAGE_FILES:
        target = Path(test_pool["path"]) / f"{PREFIX}cloud-{name}"
        shutil.copyfile(source / name, target)
        target.chmod(0o644)
        paths[name] = str(target)
    virsh("pool-refresh", test_pool["name"])
    return paths


@pytest.fixture
def cloud_template(qemu_host, staff, cloud_image_files):  # type: ignore[no-untyped-def]
    """A published template on the real host: the cloud test image (direct kernel boot, TCG), flavor "tiny"
    (1 vCPU, 256 MiB, 3 GiB), OS variant debian11, cloud-init on, linked clones."""
    from kvmweb.media.models import IsoImage
    from kvmweb.provisioning.models import Flavor, Template

    qemu_host.domain_type = "qemu"  # the test image's kernel needs TCG on these machines (HOST.md)
    qemu_host.save()
    import json
    import subprocess

    size = os.path.getsize(cloud_image_files["base.qcow2"])
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U", cloud_image_files["base.qcow2"]],
                                     capture_output=True, text=True, check=True).stdout)
    image = IsoImage.objects.create(
        kind=IsoImage.Kind.IMAGE, host=qemu_host, name="debian11-cloud-test", path=cloud_image_files["base.qcow2"],
        size=size, uploaded=size, complete=True, registered=True, added_by=staff, format="qcow2",
        virtual_size=info["virtual-size"], public=True, os_variant="debian11", kernel=cloud_image_files["vmlinuz"],
        initrd=cloud_image_files["initrd"], cmdline="root=/dev/vda ro console=ttyS0")
    flavor = Flavor.objects.create(name="tiny", vcpus=1, memory_mib=256, disk_bytes=3 * 1024**3)
    return Template.objects.create(name="Debian 12 (test)", image=image, flavor=flavor, os_variant="debian11",
                                   cloud_init=True, public=True)
