"""Fast tests of flavors and templates (libvirt's test driver): validation, who may do what, who sees which
template, the API and the pages, and "make a template of my VM" run as a job in this process."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.accounts.models import Quota
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from kvmweb.jobs.models import Job
from kvmweb.machines.services import vm_define, vm_share, vm_start
from kvmweb.media.models import IsoImage
from kvmweb.media.services import image_pool
from kvmweb.provisioning import catalog
from kvmweb.provisioning.models import Flavor, Template
from kvmweb.provisioning.selectors import flavor_get, template_get, template_list
from kvmweb.storage.models import VolumeOwner
from tests.conftest import spec_testdrv, unique_name

pytestmark = pytest.mark.django_db
TEST_URI = "test:///default"
G, M = 1024**3, 1024**2


def _api(user: Any) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def image(test_host, staff):  # type: ignore[no-untyped-def]
    """A complete public disk image of the library (its file is imaginary: the test driver never reads it)."""
    return IsoImage.objects.create(kind="image", host=test_host, name="debian12.qcow2", path="/images/debian12.qcow2",
                                   size=300 * M, uploaded=300 * M, complete=True, format="qcow2",
                                   virtual_size=2 * G, public=True, added_by=staff)


@pytest.fixture
def flavor(staff) -> Flavor:  # type: ignore[no-untyped-def]
    return catalog.flavor_create(actor=staff, name="small", vcpus=1, memory="1G", disk="10G").flavor


@pytest.fixture
def testdrv_image_pool() -> Iterator[None]:
    """Remove the image pool the test driver got during the test, with its volumes (the driver's state lives as
    long as the test process: other tests count its pools)."""
    yield
    conn = hv.registry.connection(TEST_URI)
    try:
        pool = hv.pool_lookup(conn, settings.KVMWEB_IMAGE_POOL)
    except hv.NotFound:
        return
    for vol in pool.volumes():
        pool.volume(vol.name).delete()
    pool.stop()
    pool.undefine()


# ------------------------------------------------------------------------------------------------ flavors
def test_flavor_sizes_are_parsed_as_typed(staff) -> None:  # type: ignore[no-untyped-def]
    result = catalog.flavor_create(actor=staff, name="m1.medium", vcpus="2", memory="2G", disk="20", description="x")
    flavor = result.flavor
    assert (flavor.vcpus, flavor.memory_mib, flavor.disk_bytes) == (2, 2048, 20 * G)
    assert result.message == "Flavor m1.medium was added: 2 vCPUs, 2 GiB memory, 20 GiB disk."
    flavor = catalog.flavor_update(actor=staff, flavor=flavor, name="m1.medium", vcpus=4, memory="512",
                                   disk="1.5G").flavor
    assert (flavor.vcpus, flavor.memory_mib, flavor.disk_bytes) == (4, 512, 1536 * M)
    assert flavor_get(str(flavor.pk)) == flavor
    assert AuditEntry.objects.filter(action__in=("flavor.create", "flavor.update"), ok=True).count() == 2


@pytest.mark.parametrize("fields, bad", [
    ({"name": "bad name!"}, "name"),
    ({"vcpus": 0}, "vcpus"),
    ({"vcpus": 4097}, "vcpus"),
    ({"vcpus": "two"}, "vcpus"),
    ({"memory": "8M"}, "memory"),
    ({"memory": "-1G"}, "memory"),
    ({"memory": "lots"}, "memory"),
    ({"disk": "100M"}, "disk"),
    ({"disk": "0"}, "disk"),
    ({"description": "x" * 201}, "description"),
])
def test_flavor_refuses_bad_input_by_field(staff, fields: dict[str, Any], bad: str) -> None:  # type: ignore[no-untyped-def]
    values = {"name": "ok", "vcpus": 1, "memory": "1G", "disk": "10G", **fields}
    with pytest.raises(ValidationError) as caught:
        catalog.flavor_create(actor=staff, **values)
    assert set(caught.value.fields) == {bad}
    assert not Flavor.objects.exists()


def test_flavor_refusals(staff, owner, flavor, image) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDeniedError):
        catalog.flavor_create(actor=owner, name="mine", vcpus=1, memory="1G", disk="10G")
    with pytest.raises(PermissionDeniedError):
        catalog.flavor_delete(actor=owner, flavor=flavor)
    with pytest.raises(ConflictError) as taken:
        catalog.flavor_create(actor=staff, name="small", vcpus=2, memory="1G", disk="10G")
    assert taken.value.code == "name_taken"
    catalog.template_create(actor=staff, name="debian", image=image, flavor=flavor.pk, public=True)
    with pytest.raises(ConflictError) as used:
        catalog.flavor_delete(actor=staff, flavor=flavor)
    assert "debian" in used.value.detail and Flavor.objects.filter(pk=flavor.pk).exists()
    with pytest.raises(NotFoundError):
        flavor_get("nope")


def test_flavor_api(staff, owner) -> None:  # type: ignore[no-untyped-def]
    body = {"name": "large", "vcpus": 4, "memory": "8G", "disk": "80G"}
    refused = _api(owner).post("/api/v1/flavors/", body, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    made = _api(staff).post("/api/v1/flavors/", body, format="json")
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    assert made.json()["memory_mib"] == 8192 and made.json()["disk_bytes"] == 80 * G
    listed = _api(owner).get("/api/v1/flavors/")
    assert [f["name"] for f in listed.json()] == ["large"]
    bad = _api(staff).patch(f"/api/v1/flavors/{pk}/", {"memory": "2M"}, format="json")
    assert bad.status_code == 400 and "memory" in bad.json()["fields"]
    changed = _api(staff).patch(f"/api/v1/flavors/{pk}/", {"vcpus": 8}, format="json")
    assert changed.status_code == 200 and changed.json()["vcpus"] == 8 and changed.json()["memory_mib"] == 8192
    assert _api(owner).delete(f"/api/v1/flavors/{pk}/").status_code == 403
    assert _api(staff).delete(f"/api/v1/flavors/{pk}/").status_code == 204
    assert _api(staff).get(f"/api/v1/flavors/{pk}/").status_code == 404


# ------------------------------------------------------------------------------------------------ templates
def test_template_validation(staff, image, test_host) -> None:  # type: ignore[no-untyped-def]
    iso = IsoImage.objects.create(host=test_host, name="x.iso", path="/isos/x.iso", size=1, complete=True)
    half = IsoImage.objects.create(kind="image", host=test_host, name="half.qcow2", path="/images/half.qcow2",
                                   size=1, complete=False)
    cases = [
        ({"image": iso.pk}, "image"), ({"image": half.pk}, "image"), ({"image": 999999}, "image"),
        ({"os_variant_id": "nosuchos"}, "os_variant"), ({"network": "no/net"}, "network"),
        ({"clone_mode": "thin"}, "clone_mode"), ({"flavor": 999999}, "flavor"), ({"name": ""}, "name"),
    ]
    for fields, bad in cases:
        values = {"name": "t", "image": image.pk, **fields}
        with pytest.raises(ValidationError) as caught:
            catalog.template_create(actor=staff, **values)
        assert bad in caught.value.fields, (fields, caught.value.fields)
    assert not Template.objects.exists()
    made = catalog.template_create(actor=staff, name="t", image=image.pk, os_variant_id="debian11", network="lan",
                                   clone_mode="copy").template
    assert (made.os_variant, made.network, made.clone_mode, made.public, made.owner) == \
        ("debian11", "lan", "copy", False, None)
    with pytest.raises(ConflictError):
        catalog.template_create(actor=staff, name="t", image=image.pk)


def test_users_cannot_make_or_publish_templates(owner, staff, image) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDeniedError):
        catalog.template_create(actor=owner, name="mine", image=image.pk, public=True)
    template = catalog.template_create(actor=staff, name="draft", image=image.pk).template
    with pytest.raises(PermissionDeniedError):
        catalog.template_publish(actor=owner, template=template, public=True)
    with pytest.raises(PermissionDeniedError):
        catalog.template_update(actor=owner, template=template, name="renamed")
    with pytest.raises(PermissionDeniedError):
        catalog.template_delete(actor=owner, template=template)
    refused = _api(owner).post("/api/v1/templates/", {"name": "mine", "image": image.pk, "public": True},
                               format="json")
    assert refused.status_code == 403
    assert list(Template.objects.values_list("name", flat=True)) == ["draft"]


def test_who_sees_which_template(owner, other_user, staff, image, test_host) -> None:  # type: ignore[no-untyped-def]
    public = catalog.template_create(actor=staff, name="public", image=image.pk, public=True).template
    draft = catalog.template_create(actor=staff, name="draft", image=image.pk).template
    mine = Template.objects.create(name="alices", image=image, owner=owner)
    assert {t.name for t in template_list(actor=owner)} == {"public", "alices"}
    assert {t.name for t in template_list(actor=other_user)} == {"public"}
    assert {t.name for t in template_list(actor=staff)} == {"public", "draft", "alices"}
    assert list(template_list(actor=owner, host=test_host)) != []
    for hidden in (draft, mine):
        with pytest.raises(NotFoundError):
            template_get(actor=other_user, pk=hidden.pk)
        assert _api(other_user).get(f"/api/v1/templates/{hidden.pk}/").status_code == 404
        assert _api(other_user).delete(f"/api/v1/templates/{hidden.pk}/").status_code == 404
    assert template_get(actor=other_user, pk=public.pk) == public
    assert [t["name"] for t in _api(other_user).get("/api/v1/templates/").json()] == ["public"]
    page = _client(other_user).get("/templates/").content.decode()
    assert "public" in page and "alices" not in page and "draft" not in page
    assert f"/vms/new/?template={public.pk}" in page
    assert _client(other_user).post(f"/templates/{mine.pk}/delete/").status_code == 404
    assert Template.objects.filter(pk=mine.pk).exists()


def test_template_api_and_publishing(staff, owner, image, flavor) -> None:  # type: ignore[no-untyped-def]
    made = _api(staff).post("/api/v1/templates/", {"name": "deb", "image": image.pk, "flavor": flavor.pk,
                                                   "os_variant": "debian11"}, format="json")
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    assert made.json()["flavor"]["name"] == "small" and made.json()["public"] is False
    assert _api(owner).get(f"/api/v1/templates/{pk}/").status_code == 404  # a draft
    published = _api(staff).patch(f"/api/v1/templates/{pk}/", {"public": True}, format="json")
    assert published.status_code == 200 and published.json()["public"] is True
    assert _api(owner).get(f"/api/v1/templates/{pk}/").json()["ready"] is True
    bad = _api(staff).patch(f"/api/v1/templates/{pk}/", {"os_variant": "nope"}, format="json")
    assert bad.status_code == 400 and "os_variant" in bad.json()["fields"]
    renamed = _api(staff).put(f"/api/v1/templates/{pk}/", {"name": "deb12", "flavor": None}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "deb12" and renamed.json()["flavor"] is None
    assert renamed.json()["public"] is True  # publishing is only changed when `public` is given
    assert _api(staff).delete(f"/api/v1/templates/{pk}/").status_code == 204
    assert IsoImage.objects.filter(pk=image.pk).exists()  # a library image stays


def test_staff_pages(staff, owner, image) -> None:  # type: ignore[no-untyped-def]
    client = _client(staff)
    bad = client.post("/templates/flavors/new/", {"name": "tiny", "vcpus": 1, "memory": "4M", "disk": "1G"})
    assert bad.status_code == 200 and "from 16 MiB" in bad.content.decode() and not Flavor.objects.exists()
    assert client.post("/templates/flavors/new/", {"name": "tiny", "vcpus": 1, "memory": "256M",
                                                   "disk": "1G"}).status_code == 302
    flavor = Flavor.objects.get(name="tiny")
    edit = client.get(f"/templates/flavors/{flavor.pk}/edit/").content.decode()
    assert 'value="256M"' in edit and 'value="1G"' in edit
    assert client.post("/templates/new/", {"name": "deb", "image": image.pk, "flavor": flavor.pk,
                                           "clone_mode": "linked", "cloud_init": "on"}).status_code == 302
    template = Template.objects.get(name="deb")
    assert client.post(f"/templates/{template.pk}/publish/").status_code == 302
    template.refresh_from_db()
    assert template.public
    user = _client(owner)
    assert user.get("/templates/new/").status_code == 403
    assert user.post("/templates/flavors/new/", {"name": "x", "vcpus": 1, "memory": "1G", "disk": "1G"}).status_code == 403
    assert user.post(f"/templates/{template.pk}/unpublish/").status_code == 302  # a refusal said as a message
    template.refresh_from_db()
    assert template.public
    page = user.get("/templates/").content.decode()
    assert "tiny" in page and 'href="/templates/"' in page  # the flavors section; the navigation


# ------------------------------------------------------------------------------------------------ from a VM
def _vm_with_disk(owner: Any, test_host: Any, *, disk: bool = True, kernel: bool = False) -> Any:
    """alice's VM with a disk. The test driver copies volumes only inside one pool, so its disk lives in the image
    pool here (copies across pools are proven on qemu:///system: test_catalog_real.py)."""
    devices: tuple[Any, ...] = ()
    if disk:
        volume = image_pool(test_host).create_volume(
            hv.VolumeSpec(name=unique_name("src") + ".qcow2", capacity=64 * M, format="qcow2"))
        devices = (hv.Disk.new(target="vda", source=volume.path),)
    doc = spec_testdrv(devices=devices)
    if kernel:  # direct kernel boot
        doc.kernel, doc.initrd, doc.cmdline = "/boot/vmlinuz-tpl", "/boot/initrd-tpl", "console=ttyS0 root=/dev/vda"
    return vm_define(actor=owner, host=test_host, doc=doc)


def test_make_a_template_of_my_vm(owner, other_user, test_host, eager, testdrv_image_pool,  # type: ignore[no-untyped-def]
                                  django_capture_on_commit_callbacks) -> None:
    vm = _vm_with_disk(owner, test_host, kernel=True)
    name = unique_name("tpl")
    assert _api(other_user).post(f"/api/v1/vms/{vm.uuid}/template/", {"name": name}, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        reply = _api(owner).post(f"/api/v1/vms/{vm.uuid}/template/", {"name": name}, format="json")
    assert reply.status_code == 202, reply.content
    job = Job.objects.get(pk=reply.json()["job"]["id"])
    assert job.kind == "template.from_vm" and job.state == Job.State.SUCCEEDED, job.error
    template = Template.objects.get(name=name)
    image = template.image
    assert (template.owner, template.public, template.flavor, template.os_variant, template.cloud_init,
            template.clone_mode) == (owner, False, None, "generic", True, "linked")
    assert (image.kind, image.complete, image.public, image.added_by, image.format, image.virtual_size) == \
        ("image", True, False, owner, "qcow2", 64 * M)
    assert (image.kernel, image.initrd, image.cmdline) == \
        ("/boot/vmlinuz-tpl", "/boot/initrd-tpl", "console=ttyS0 root=/dev/vda")
    pool = hv.pool_lookup(hv.registry.connection(TEST_URI), settings.KVMWEB_IMAGE_POOL)
    assert pool.has_volume(f"{name}.qcow2") and image.path == pool.volume_path(f"{name}.qcow2")
    assert VolumeOwner.objects.filter(pool=pool.name, name=f"{name}.qcow2", owner=owner).exists()
    assert AuditEntry.objects.filter(action="vm.template", ok=True, actor=owner).exists()
    # the name is taken now; bob does not see alice's private template
    again = _api(owner).post(f"/api/v1/vms/{vm.uuid}/template/", {"name": name}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "name_taken"
    assert name not in _client(other_user).get("/templates/").content.decode()
    assert name in _client(owner).get("/templates/").content.decode()
    # alice renames her private template; she may not publish it
    renamed = _api(owner).patch(f"/api/v1/templates/{template.pk}/", {"description": "my web server"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["description"] == "my web server"
    assert _api(owner).patch(f"/api/v1/templates/{template.pk}/", {"public": True}, format="json").status_code == 403
    # alice deletes it: the image goes with it
    assert _api(owner).delete(f"/api/v1/templates/{template.pk}/").status_code == 204
    assert not pool.has_volume(f"{name}.qcow2")
    assert not IsoImage.objects.filter(pk=image.pk).exists()
    assert not VolumeOwner.objects.filter(pool=pool.name, name=f"{name}.qcow2").exists()


def test_make_a_template_refusals(owner, other_user, test_host, testdrv_image_pool) -> None:  # type: ignore[no-untyped-def]
    running = _vm_with_disk(owner, test_host)
    vm_start(actor=owner, vm=running)
    with pytest.raises(ConflictError) as caught:
        catalog.template_from_vm(actor=owner, vm=running, name=unique_name("tpl"))
    assert caught.value.code == "vm_running"
    diskless = _vm_with_disk(owner, test_host, disk=False)
    with pytest.raises(ConflictError) as caught:
        catalog.template_from_vm(actor=owner, vm=diskless, name=unique_name("tpl"))
    assert caught.value.code == "no_disk"
    vm = _vm_with_disk(owner, test_host)
    with pytest.raises(ValidationError) as bad:
        catalog.template_from_vm(actor=owner, vm=vm, name="x" * 60)
    assert "name" in bad.value.fields
    vm_share(actor=owner, vm=vm, user=other_user, role="operator")
    with pytest.raises(PermissionDeniedError):
        catalog.template_from_vm(actor=other_user, vm=vm, name=unique_name("tpl"))
    Quota.objects.create(user=owner, max_disk_gib=0)
    with pytest.raises(ConflictError) as quota:
        catalog.template_from_vm(actor=owner, vm=vm, name=unique_name("tpl"))
    assert quota.value.code == "quota"
    assert not Template.objects.exists() and not IsoImage.objects.exists() and not Job.objects.exists()


def test_a_failed_copy_leaves_nothing(owner, test_host, eager, testdrv_image_pool,  # type: ignore[no-untyped-def]
                                      django_capture_on_commit_callbacks) -> None:
    vm = _vm_with_disk(owner, test_host)
    name = unique_name("tpl")
    with django_capture_on_commit_callbacks(execute=True):
        result = catalog.template_from_vm(actor=owner, vm=vm, name=name)
        # the source disk disappears before the job runs: the copy fails and is undone
        conn = hv.registry.connection(TEST_URI)
        source = hv.domain_lookup(conn, str(vm.uuid)).definition().disks[0].info().source
        assert source
        hv.volume_by_path(conn, source).delete()  # type: ignore[union-attr]
    job = Job.objects.get(pk=result.job.pk)
    assert job.state == Job.State.FAILED
    assert not Template.objects.exists() and not IsoImage.objects.exists()
    pool = hv.pool_lookup(conn, settings.KVMWEB_IMAGE_POOL)
    assert not pool.has_volume(f"{name}.qcow2")


def test_the_page_offers_make_a_template_to_managers_of_shut_off_vms(owner, other_user, test_host,  # type: ignore[no-untyped-def]
                                                                    testdrv_image_pool) -> None:
    vm = _vm_with_disk(owner, test_host)
    assert 'id="make-template"' in _client(owner).get(f"/vms/{vm.uuid}/").content.decode()
    vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    assert 'id="make-template"' not in _client(other_user).get(f"/vms/{vm.uuid}/").content.decode()
    form = _client(owner).get(f"/templates/from-vm/{vm.uuid}/")
    assert form.status_code == 200 and "private" in form.content.decode()
    vm_start(actor=owner, vm=vm)
    assert 'id="make-template"' not in _client(owner).get(f"/vms/{vm.uuid}/").content.decode()
