"""Remote hosts for real: the second host (tests/secondhost.py) added over qemu+libssh with the portal's own key and
its host key pinned, a changed host key refused in words, both hosts' VMs on one list, and a host that stops
answering shown as unavailable on every page."""
from __future__ import annotations

import subprocess

import pytest
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.hosts import identity
from kvmweb.hosts.models import Host
from kvmweb.hosts.selectors import host_page, host_status
from kvmweb.hosts.services import HostKeyToConfirm, host_add, host_remove
from kvmweb.core.errors import ConflictError
from tests.conftest import memtest_spec, unique_name

pytestmark = [pytest.mark.real]


def _fingerprint_by_ssh_keygen(path) -> str:  # type: ignore[no-untyped-def]
    return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[1]


@pytest.fixture
def h2_address(second_host_trusts_portal) -> str:  # type: ignore[no-untyped-def]
    address = f"[{second_host_trusts_portal.h2_ip}]:2222"
    yield address
    identity.known_hosts_unpin(address)


def test_add_over_libssh_pins_the_confirmed_key_then_remove_unpins(staff, second_host_trusts_portal, h2_address) -> None:  # type: ignore[no-untyped-def]
    h2 = second_host_trusts_portal
    typed = f"qemu+ssh://root@{h2.h2_ip}:2222/system"
    with pytest.raises(HostKeyToConfirm) as asked:
        host_add(actor=staff, name="h2", uri=typed)
    assert asked.value.key.fingerprint == _fingerprint_by_ssh_keygen(h2.host_key)  # what the host's key file says
    assert identity.known_hosts_pinned(h2_address) == [] and not Host.objects.exists()  # nothing yet

    with pytest.raises(HostKeyToConfirm) as again:  # a fingerprint that is not the host's: asked again, nothing kept
        host_add(actor=staff, name="h2", uri=typed, host_key_fingerprint="SHA256:not-this-one")
    assert "not the SHA256:not-this-one you confirmed" in again.value.detail
    assert identity.known_hosts_pinned(h2_address) == []

    result = host_add(actor=staff, name="h2", uri=typed, host_key_fingerprint=asked.value.key.fingerprint)
    host = result.host
    assert host.uri.startswith(f"qemu+libssh://root@{h2.h2_ip}:2222/system?keyfile=")
    assert "sshauth=privkey" in host.uri and "kvmweb-h2" in result.message
    assert [k.fingerprint for k in identity.known_hosts_pinned(h2_address)] == [asked.value.key.fingerprint]
    page = host_page(actor=staff, host_id=host.pk)
    assert page.available and page.details is not None and page.details.facts.hostname == "kvmweb-h2"
    assert page.details.accel in ("KVM", "TCG") and page.details.cells

    host_remove(actor=staff, host=host)
    assert identity.known_hosts_pinned(h2_address) == [] and not Host.objects.exists()


def test_a_changed_host_key_is_refused_in_words(client, staff, second_host_trusts_portal, h2_address, portal_ssh_dir) -> None:  # type: ignore[no-untyped-def]
    """known_hosts pins another key for the host's address (a reinstalled host, or someone in between): libvirt's
    libssh refuses, and the pages, the API and adding another host at that address say why; nothing crashes."""
    h2 = second_host_trusts_portal
    other = portal_ssh_dir / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    identity.known_hosts_pin(identity.HostKey(address=h2_address, key_type="ssh-ed25519",
                                              key=other.with_suffix(".pub").read_text().split()[1]))
    me = identity.ssh_identity()
    host = Host.objects.create(name="reinstalled", uri=(
        f"qemu+libssh://root@{h2.h2_ip}:2222/system?keyfile={me.key_file}&known_hosts={me.known_hosts}"
        "&sshauth=privkey"))
    try:
        status = host_status(host)
        assert not status.available
        assert "is not the one pinned when it was added" in (status.error or "")
        assert "remove it and add it again" in (status.error or "")
        client.force_login(staff)
        for url in ("/hosts/", f"/hosts/{host.pk}/", "/vms/", "/"):
            page = client.get(url)
            assert page.status_code == 200, url
        assert b"is not the one pinned when it was added" in client.get(f"/hosts/{host.pk}/").content
        api = APIClient()
        api.force_login(staff)
        body = api.get(f"/api/v1/hosts/{host.pk}/").json()
        assert body["available"] is False and "is not the one pinned" in body["error"]
        with pytest.raises(ConflictError, match="is not the one pinned when it was added"):
            host_add(actor=staff, name="again", uri=f"qemu+ssh://nobody@{h2.h2_ip}:2222/system",
                     host_key_fingerprint=_fingerprint_by_ssh_keygen(h2.host_key))
    finally:
        hv.registry.forget(host.uri)


def test_the_vm_list_shows_both_hosts_and_a_dead_one_breaks_no_page(client, staff, qemu_host, qemu_host2, second_host, cleanup_domains) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VirtualMachine
    from kvmweb.machines.services import vm_define

    here, there = memtest_spec(unique_name("here")), memtest_spec(unique_name("there"))
    cleanup_domains.append(here.name)
    vm_define(actor=staff, host=qemu_host, doc=here)
    vm_define(actor=staff, host=qemu_host2, doc=there)  # removed by qemu_host2's finalizer
    client.force_login(staff)
    listing = client.get("/vms/").content.decode()
    assert here.name in listing and there.name in listing
    hosts = client.get("/hosts/").content.decode()
    second_row = hosts.split('data-host="second"', 1)[1].split("</tr>", 1)[0]
    assert "0 running / 1" in second_row  # counted in libvirt: host 2 holds only the VM defined above
    assert 'data-host="local"' in hosts
    assert there.name in client.get(f"/hosts/{qemu_host2.pk}/").content.decode()

    # a host whose daemon does not answer (nothing listens on that port of this machine's end of the pair)
    dead = Host.objects.create(name="gone", uri=f"qemu+tcp://{second_host.h1_ip}:1/system")
    lost = VirtualMachine.objects.create(host=dead, uuid="5a1e0000-0000-4000-8000-0000000000aa", name="lost",
                                         owner=staff)
    try:
        for url in ("/vms/", "/", "/hosts/", f"/hosts/{dead.pk}/", f"/vms/{lost.uuid}/"):
            page = client.get(url)
            assert page.status_code == 200, url
            assert b"gone" in page.content or b"lost" in page.content, url
        assert here.name in client.get("/vms/").content.decode()  # the other hosts are listed as usual
        assert b"unavailable" in client.get(f"/hosts/{dead.pk}/").content
        assert b"does not answer" in client.get(f"/vms/{lost.uuid}/").content
    finally:
        hv.registry.forget(dead.uri)


def test_add_over_tcp_where_insecure_hosts_are_allowed(staff, second_host, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KVMWEB_ALLOW_INSECURE_HOSTS = True
    result = host_add(actor=staff, name="h2-tcp", uri=second_host.tcp_uri)
    assert result.host.uri == second_host.tcp_uri and "kvmweb-h2" in result.message
    page = host_page(actor=staff, host_id=result.host.pk)
    assert page.available and page.details is not None and page.details.facts.hostname == "kvmweb-h2"
    host_remove(actor=staff, host=result.host)
    assert not Host.objects.exists()
