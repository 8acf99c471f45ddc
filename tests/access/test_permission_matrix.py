"""Every URL of the portal, taken from the URL configuration, against four kinds of visitor:
anonymous, the owner of the object, another user, staff. A new endpoint cannot ship unchecked: a URL whose
arguments this file cannot fill makes the test fail until someone says here how to fill them."""
from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from kvmweb.machines import services
from tests.conftest import spec_testdrv

pytestmark = pytest.mark.django_db

# URLs anyone may open.
PUBLIC = {"login", "logout", "favicon"}  # favicon only redirects to its static file
# URLs only staff may use (pages redirect others to the admin login or answer 403; the API answers 403).
STAFF_ONLY_PREFIXES = ("hosts:", "api:host-", "fleet:host-", "admin:", "metrics", "api:backup-retention")
# Django's admin is guarded by Django itself; its index is checked, its hundreds of model URLs are not walked.
SKIP_NAMESPACES = ("admin",)


@dataclass(frozen=True)
class Endpoint:
    name: str  # namespaced URL name
    route: str  # e.g. "vms/<uuid:uuid>/start/"
    kwargs: tuple[str, ...]
    extra: dict[str, Any]

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    def url(self, values: dict[str, Any]) -> str:
        path = self.route
        for key in self.kwargs:
            path = _replace_kwarg(path, key, str(values[key]))
        return "/" + path


def _replace_kwarg(route: str, key: str, value: str) -> str:
    import re

    return re.sub(r"<(?:[a-z_]+:)?" + key + ">", value, route)


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[Endpoint]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}{p.namespace}:"
            if p.namespace in SKIP_NAMESPACES:
                continue
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            if route.startswith("static/") or "(?P" in route or "\\" in route:
                continue
            converters = getattr(p.pattern, "converters", {})
            yield Endpoint(name=f"{namespace}{p.name or route}", route=route, kwargs=tuple(converters),
                           extra=dict(p.default_args))


ENDPOINTS = sorted(_walk(get_resolver().url_patterns), key=lambda e: e.route)


# How to make an object owned by ``owner`` for URLs that take arguments other than a VM's uuid:
# url-name prefix -> factory(owner, test_host) returning the URL kwargs. Apps add theirs here.
ObjectFactory = Callable[[Any, Any], dict[str, Any]]
def _owned_volume(owner: Any, host: Any) -> dict[str, Any]:
    """A volume alice made in the test driver's pool, opened to her only."""
    from kvmweb.storage.models import PoolAccess
    from kvmweb.storage.services import volume_create
    from tests.conftest import unique_name

    access, _ = PoolAccess.objects.get_or_create(host=host, pool="default-pool")
    access.users.add(owner)
    name = unique_name("perm")
    volume_create(actor=owner, host=host, pool="default-pool", name=name, size="1M")
    return {"host_id": host.pk, "name": "default-pool", "volume": name}


def _owned_job(owner: Any, host: Any) -> dict[str, Any]:
    """A job alice started (never sent to a worker)."""
    from kvmweb.jobs.services import job_create

    return {"pk": job_create(actor=owner, kind="jobs.selftest", title="perm").pk}


def _owned_upload(owner: Any, host: Any) -> dict[str, Any]:
    """An ISO upload alice has not finished (complete media are shared with everyone; unfinished ones are not)."""
    from kvmweb.media.models import IsoImage

    iso = IsoImage.objects.create(host=host, name="perm.iso", path="/perm/perm.iso", size=10, added_by=owner)
    return {"pk": iso.pk}


def _owned_image(owner: Any, host: Any) -> dict[str, Any]:
    """A disk image alice uploads, not finished and not public (only she and staff see it)."""
    from kvmweb.media.models import IsoImage

    image = IsoImage.objects.create(kind="image", host=host, name="perm.qcow2", path="/perm/perm.qcow2", size=10,
                                    public=False, added_by=owner)
    return {"pk": image.pk}


def _owned_share(owner: Any, host: Any) -> dict[str, Any]:
    """alice's VM, shared with carol: the share's own URLs (the roles' cells are in test_role_matrix.py)."""
    from django.contrib.auth import get_user_model

    carol, _ = get_user_model().objects.get_or_create(username="carol")
    vm = services.vm_define(actor=owner, host=host, doc=spec_testdrv())
    return {"uuid": vm.uuid, "pk": services.vm_share(actor=owner, vm=vm, user=carol, role="viewer").share_id}


def _owned_token(owner: Any, host: Any) -> dict[str, Any]:
    """One of alice's API tokens."""
    from kvmweb.accounts.tokens import token_create

    return {"pk": token_create(actor=owner, name="perm").token.pk}


def _owned_ssh_key(owner: Any, host: Any) -> dict[str, Any]:
    """One of alice's SSH keys."""
    from kvmweb.accounts.sshkeys import ssh_key_add
    from tests.accounts.test_profile_fast import ED25519

    return {"pk": ssh_key_add(actor=owner, public_key=ED25519).key.pk}


def _private_template(owner: Any, host: Any) -> dict[str, Any]:
    """alice's private template (made of her own VM): only she and staff see it."""
    from kvmweb.media.models import IsoImage
    from kvmweb.provisioning.models import Template

    image = IsoImage.objects.create(kind="image", host=host, name="perm.qcow2", path="/images/perm.qcow2", size=10,
                                    complete=True, public=False, added_by=owner)
    return {"pk": Template.objects.create(name="perm", image=image, owner=owner).pk}


def _flavor(owner: Any, host: Any) -> dict[str, Any]:
    """A flavor: every logged-in person reads it (READ_BY_EVERYONE), only staff change it."""
    from kvmweb.provisioning.models import Flavor

    return {"pk": Flavor.objects.create(name="perm", vcpus=1, memory_mib=512, disk_bytes=1 << 30).pk}


def _owned_snapshot(owner: Any, host: Any) -> dict[str, Any]:
    """A snapshot of alice's VM (a qcow2 disk, so it can take one), made through libvirt directly."""
    from kvmweb import hypervisor as hv

    vm = services.vm_define(actor=owner, host=host, doc=spec_testdrv(devices=(
        hv.Disk.new(target="vda", source="/perm/perm.qcow2"),)))
    dom = hv.domain_lookup(hv.registry.connection(host.uri), str(vm.uuid))
    hv.snapshot_create(dom, hv.SnapshotSpec.new(name="perm-snap", memory=False))
    return {"uuid": vm.uuid, "name": "perm-snap"}


def _owned_backup(owner: Any, host: Any) -> dict[str, Any]:
    """A complete backup of alice's VM (its row only: the matrix reads and refuses, it never restores)."""
    from kvmweb.protection.models import Backup

    vm = services.vm_define(actor=owner, host=host, doc=spec_testdrv())
    backup = Backup.objects.create(host=host, vm_uuid=vm.uuid, vm_name=vm.name, owner=owner, made_by=owner,
                                   pool="kvmweb-backups", state=Backup.State.COMPLETE, disks=[], definition="")
    return {"pk": backup.pk}


FACTORIES: dict[str, ObjectFactory] = {
    "protection:backup-": _owned_backup,
    "api:backup-": _owned_backup,
    "accounts:token-": _owned_token,
    "api:token-": _owned_token,
    "accounts:ssh-key-": _owned_ssh_key,
    "api:ssh-key-": _owned_ssh_key,
    "jobs:": _owned_job,
    "api:job-": _owned_job,
    "media:": _owned_upload,
    "machines:share-": _owned_share,
    "api:vm-share": _owned_share,
    "api:iso-": _owned_upload,
    "media:image-": _owned_image,
    "api:image-": _owned_image,
    "storage:": _owned_volume,
    "api:pool-": _owned_volume,
    "api:volume-": _owned_volume,
    # networks are staff-only; the test driver's own "default" network is not opened to users
    "templates:": _private_template,
    "api:template-": _private_template,
    "templates:flavor-": _flavor,
    "api:flavor-": _flavor,
    "protection:vm-snapshot-": _owned_snapshot,
    "api:vm-snapshot": _owned_snapshot,
    "networks:": lambda owner, host: {"host_id": host.pk, "name": "default"},
    "api:network-": lambda owner, host: {"host_id": host.pk, "name": "default"},
}


# Lists under a host: another user gets an answer, without the owner's objects in it.
LISTS = {"api:pool-list"}
# Objects every logged-in person may read (GET answers 200) but only staff change.
READ_BY_EVERYONE = {"api:flavor-detail"}


def _factory_for(endpoint: Endpoint) -> ObjectFactory | None:
    matches = [k for k in FACTORIES if endpoint.name.startswith(k)]
    return FACTORIES[max(matches, key=len)] if matches else None


def _dummy(kwarg: str) -> Any:
    return {"uuid": uuid_mod.uuid4(), "pk": 999999, "host_id": 999999, "name": "nothing-here",
            "volume": "nothing-here"}.get(kwarg, "x")


def _client(user: Any = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _call(client: Client, method: str, url: str) -> Any:
    accept = "application/json" if url.startswith("/api/v1/") else "*/*" if url.startswith("/api/") else "text/html"
    return getattr(client, method)(url, HTTP_ACCEPT=accept)


def test_every_endpoint_is_known() -> None:
    assert any(e.name == "machines:list" for e in ENDPOINTS)
    unknown = [e for e in ENDPOINTS if set(e.kwargs) - {"uuid", "pk", "host_id", "name", "volume"}]
    assert not unknown, f"teach tests/access/test_permission_matrix.py these URL arguments: {unknown}"
    needs_factory = [e.name for e in ENDPOINTS if set(e.kwargs) & {"pk", "host_id", "name", "volume"}
                     and not _factory_for(e) and not e.name.startswith(STAFF_ONLY_PREFIXES)]
    assert not needs_factory, f"add FACTORIES entries for: {needs_factory}"


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.name not in PUBLIC], ids=lambda e: e.name)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_anonymous_is_sent_to_login_or_refused(endpoint: Endpoint, method: str) -> None:
    url = endpoint.url({k: _dummy(k) for k in endpoint.kwargs})
    response = _call(_client(), method, url)
    if endpoint.is_api or endpoint.route.startswith("api/") or endpoint.name == "metrics":  # Prometheus: 401
        assert response.status_code in (401, 403, 405), (url, response.status_code)
        if response.status_code != 405 and "/api/v1/" in url:
            assert response.json()["error"]
    elif response.status_code == 405:
        pass  # the method is not offered at all: nothing is revealed, nothing changes
    else:
        assert response.status_code == 302, (url, response.status_code)
        assert "login" in response["Location"], (url, response["Location"])


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.name.startswith(STAFF_ONLY_PREFIXES)],
                         ids=lambda e: e.name)
def test_staff_only_refuses_normal_users(endpoint: Endpoint, owner, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    """A normal user is refused (GET, POST and DELETE; nothing changes), staff get the page (GET)."""
    values = {k: _dummy(k) for k in endpoint.kwargs}
    if "pk" in values and endpoint.name.startswith(("api:host-", "hosts:")):
        values["pk"] = test_host.pk
    if endpoint.name == "api:backup-retention-detail":
        from kvmweb.protection.models import Retention

        values["pk"] = Retention.objects.create(host=test_host, pool="perm", keep=1).pk
    url = endpoint.url(values)
    response = _call(_client(owner), "get", url)
    assert response.status_code in (302, 403, 404), (url, response.status_code)
    if response.status_code == 302:
        assert "login" in response["Location"]
    for method in ("post", "delete"):
        assert _call(_client(owner), method, url).status_code in (302, 403, 404, 405), (url, method)
    assert test_host.__class__.objects.filter(pk=test_host.pk).exists()  # a refused removal removed nothing
    assert _call(_client(staff), "get", url).status_code in (200, 405), url


@pytest.fixture
def owned(owner, test_host):  # type: ignore[no-untyped-def]
    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    return {"uuid": vm.uuid}


VM_SCOPED = [e for e in ENDPOINTS if "uuid" in e.kwargs]


@pytest.mark.parametrize("endpoint", VM_SCOPED, ids=lambda e: e.name)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_other_user_gets_404_for_every_vm_url(endpoint: Endpoint, method: str, owned, other_user, owner) -> None:  # type: ignore[no-untyped-def]
    values = dict(owned)
    for key in endpoint.kwargs:
        values.setdefault(key, _dummy(key))
    url = endpoint.url(values)
    response = _call(_client(other_user), method, url)
    assert response.status_code in (404, 405), (url, method, response.status_code)
    if endpoint.is_api and response.status_code == 404:
        assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("endpoint", [e for e in VM_SCOPED if e.name in ("machines:detail", "machines:delete",
                                                                           "api:vm-detail")],
                         ids=lambda e: e.name)
def test_owner_and_staff_can_read(endpoint: Endpoint, owned, owner, staff) -> None:  # type: ignore[no-untyped-def]
    url = endpoint.url(owned)
    assert _call(_client(owner), "get", url).status_code == 200
    assert _call(_client(staff), "get", url).status_code == 200


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if set(e.kwargs) & {"pk", "name", "host_id", "volume"}
                                      and _factory_for(e)], ids=lambda e: e.name)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_other_user_gets_404_for_owned_objects(endpoint: Endpoint, method: str, owner, other_user, test_host) -> None:  # type: ignore[no-untyped-def]
    factory = _factory_for(endpoint)
    assert factory is not None
    values = factory(owner, test_host)
    for key in endpoint.kwargs:
        values.setdefault(key, _dummy(key))
    url = endpoint.url(values)
    response = _call(_client(other_user), method, url)
    if endpoint.name in LISTS and method == "get" and response.status_code == 200:
        # a list answers, but shows nothing of the owner's
        body = response.content.decode()
        assert values.get("volume", "\0") not in body and '"default-pool"' not in body, url
        return
    if endpoint.name in READ_BY_EVERYONE and method == "get":
        assert response.status_code == 200, (url, response.status_code)
        return
    assert response.status_code in (403, 404, 405), (url, method, response.status_code)
