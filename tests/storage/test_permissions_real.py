"""Real: every storage URL refuses anonymous users, other users (404) and non-staff on staff-only pool actions."""
from __future__ import annotations

import pytest
from django.urls import URLPattern, reverse

from kvmweb.storage import api_urls, urls
from tests.conftest import memtest_spec, unique_name, virsh
from tests.storage.conftest import vol_url

pytestmark = pytest.mark.real
LISTS = {"storage:index", "api:pool-list"}  # pages listing what a user may see: 200, without others' things
STAFF_ONLY = {"pool-define", "pool-delete", "pool-access", "pool-start", "pool-stop", "pool-refresh",
              "pool-autostart", "pool-autostart-on", "pool-autostart-off"}


def _urls(kwargs_for: dict[str, object]) -> list[tuple[str, str]]:
    found = []
    for namespace, module in (("storage", urls), ("api", api_urls)):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern)
            keys = set(pattern.pattern.converters)
            name = f"{namespace}:{pattern.name}"
            found.append((name, reverse(name, kwargs={k: kwargs_for[k] for k in keys})))
    return found


@pytest.fixture
def alices_things(open_pool, alice_api, real_vm):  # type: ignore[no-untyped-def]
    vm = real_vm(memtest_spec())
    volume = f"{unique_name('perm')}.qcow2"
    assert alice_api.post(vol_url(open_pool), {"name": volume, "size": "1M"}, format="json").status_code == 201
    yield {"host_id": open_pool["host"].pk, "name": open_pool["name"], "volume": volume, "uuid": vm.uuid}
    virsh("vol-delete", volume, "--pool", open_pool["name"], check=False)


def test_anonymous_is_refused_everywhere(client, alices_things) -> None:  # type: ignore[no-untyped-def]
    for name, url in _urls(alices_things):
        for method in ("get", "post"):
            reply = getattr(client, method)(url)
            if name.startswith("api:"):
                assert reply.status_code in (401, 403, 405), (name, method, reply.status_code)
            else:
                assert reply.status_code in (302, 405), (name, method, reply.status_code)
                if reply.status_code == 302:
                    assert "/accounts/login/" in reply["Location"], (name, method)


def test_other_user_gets_404_or_403(client, other_user, alices_things) -> None:  # type: ignore[no-untyped-def]
    client.force_login(other_user)
    for name, url in _urls(alices_things):
        for method in ("get", "post", "delete", "put"):
            reply = getattr(client, method)(url)
            if reply.status_code == 405:
                continue
            if name in LISTS and method == "get":
                assert reply.status_code == 200 and alices_things["volume"] not in reply.content.decode()
                assert alices_things["name"] not in reply.content.decode()
                continue
            short = name.split(":")[1]
            allowed = (403, 404) if short in STAFF_ONLY or short.startswith("pool") else (404,)
            assert reply.status_code in allowed, (name, method, reply.status_code, reply.content[:200])
    # the volume and the VM are untouched
    assert alices_things["volume"] in virsh("vol-list", alices_things["name"])
