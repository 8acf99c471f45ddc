"""The VM list's thumbnails: a screenshot of a running VM is taken at most once per KVMWEB_THUMBNAIL_SECONDS
whoever asks (the cache answers, no libvirt call); the console's own screenshot is always fresh; a shut-off VM
has none."""
from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from kvmweb import hypervisor as hv
from tests.conftest import memtest_spec, virsh

pytestmark = pytest.mark.real


def test_thumbnail_is_cached_and_shut_off_has_none(real_vm, owner, staff) -> None:  # type: ignore[no-untyped-def]
    cache.clear()
    vm = real_vm(memtest_spec())
    alice, admin = Client(), Client()
    alice.force_login(owner)
    admin.force_login(staff)
    url = f"/console/{vm.uuid}/screenshot.png"
    r = alice.get(url + "?thumb=1")
    assert r.status_code == 409 and "shut off" in r.content.decode()

    virsh("start", vm.name)
    conn = hv.registry.connection("qemu:///system")
    r = alice.get(url + "?thumb=1")
    assert r.status_code == 200 and r["Content-Type"] == "image/png" and r.content.startswith(b"\x89PNG")
    before = conn.calls
    again = admin.get(url + "?thumb=2")  # someone else, another page: the same picture, no libvirt call
    assert again.status_code == 200 and again.content == r.content
    assert conn.calls == before
    fresh = alice.get(url)  # without ?thumb: the console's screenshot is taken now
    assert fresh.status_code == 200 and conn.calls > before
