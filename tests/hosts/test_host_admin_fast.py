"""Adding and removing hosts, the portal's SSH key, the host page, and a host that does not answer (fast: libvirt's
test driver, URIs nobody answers on, the run's temporary KVMWEB_SSH_DIR)."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from kvmweb import hypervisor as hv
from kvmweb.audit.models import AuditEntry
from kvmweb.core.errors import ConflictError, PermissionDeniedError, ValidationError
from kvmweb.hosts import identity
from kvmweb.hosts.models import Host
from kvmweb.hosts.services import host_add, host_remove, host_target

pytestmark = pytest.mark.django_db
NOBODY = "qemu+tcp://127.0.0.1:1/system"  # a port nothing listens on


@pytest.fixture
def insecure(settings):  # type: ignore[no-untyped-def]
    settings.KVMWEB_ALLOW_INSECURE_HOSTS = True
    return settings


# ------------------------------------------------------------------------------------------------ the SSH key
def test_the_portal_key_is_made_once_in_its_own_folder(portal_ssh_dir) -> None:  # type: ignore[no-untyped-def]
    first = identity.ssh_identity()
    assert first.key_file == portal_ssh_dir / "id_ed25519" and first.public_key.startswith("ssh-ed25519 ")
    assert (first.key_file.stat().st_mode & 0o777) == 0o600
    assert identity.ssh_identity() == first  # idempotent: the same key next time
    assert first.fingerprint.startswith("SHA256:") and first.authorized_keys_line == f"restrict {first.public_key}"


def test_the_fingerprint_is_openssh_s(portal_ssh_dir) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    me = identity.ssh_identity()
    printed = subprocess.run(["ssh-keygen", "-lf", str(me.key_file.with_suffix(".pub"))], capture_output=True,
                             text=True, check=True).stdout.split()[1]
    assert me.fingerprint == printed


def test_pinning_and_unpinning_known_hosts(portal_ssh_dir) -> None:  # type: ignore[no-untyped-def]
    key = identity.HostKey(address="[10.9.9.9]:2222", key_type="ssh-ed25519",
                           key=identity.ssh_identity().public_key.split()[1])
    other = identity.HostKey(address="10.9.9.8", key_type=key.key_type, key=key.key)
    assert identity.known_hosts_pin(key) and not identity.known_hosts_pin(key)
    identity.known_hosts_pin(other)
    assert identity.known_hosts_pinned(key.address) == [key]
    assert identity.known_hosts_unpin(key.address) == 1
    assert identity.known_hosts_pinned(key.address) == [] and identity.known_hosts_pinned(other.address) == [other]
    identity.known_hosts_unpin(other.address)


# ------------------------------------------------------------------------------------------------ URIs
def test_ssh_uris_become_libssh_with_the_portal_s_key_and_known_hosts(portal_ssh_dir) -> None:  # type: ignore[no-untyped-def]
    for typed in ("qemu+ssh://root@kvm1.example:2222/system", "qemu+libssh://root@kvm1.example:2222/system"):
        target = host_target(typed)
        assert target.shown == "qemu+libssh://root@kvm1.example:2222/system"
        assert target.uri == (f"qemu+libssh://root@kvm1.example:2222/system?keyfile={portal_ssh_dir}/id_ed25519"
                              f"&known_hosts={portal_ssh_dir}/known_hosts&sshauth=privkey")
        assert (target.ssh_host, target.ssh_port) == ("kvm1.example", 2222)
    assert host_target("qemu+ssh://kvm1.example/system").ssh_port == 22
    assert host_target("qemu+tls://kvm1.example/system").uri == "qemu+tls://kvm1.example/system"
    assert host_target("qemu:///system").uri == "qemu:///system"


@pytest.mark.parametrize("uri, words", [
    ("qemu+tcp://10.0.0.1/system", "neither authentication nor encryption"),
    ("test:///default", "neither authentication nor encryption"),
    ("qemu+ssh://root@kvm1.example/system?no_verify=1", "without options"),
    ("qemu+ssh://root@kvm1.example/system;reboot", "not a libvirt URI"),
    ("qemu+ssh://root@$(reboot)/system", "not a libvirt URI"),
    ("qemu+ssh://root@-oProxyCommand=x/system", "names the host"),
    ("qemu+ssh://Root Name@kvm1/system", "not a libvirt URI"),
    ("qemu+ssh://root@kvm1.example:99999/system", "no valid host and port"),
    ("xen://kvm1.example/", "use qemu+ssh"),
    ("qemu+ssh://root@kvm1.example/other", "without options"),
])
def test_bad_and_insecure_uris_are_refused_in_words(uri: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        host_target(uri)
    assert words in refused.value.detail and "uri" in refused.value.fields


def test_tcp_is_taken_where_insecure_hosts_are_allowed(insecure) -> None:  # type: ignore[no-untyped-def]
    assert host_target("qemu+tcp://10.0.0.1/system").uri == "qemu+tcp://10.0.0.1/system"


# ------------------------------------------------------------------------------------------------ adding
def test_add_tests_the_connection_saves_and_audits(staff, insecure) -> None:  # type: ignore[no-untyped-def]
    result = host_add(actor=staff, name="drv", uri="test:///default")
    host = Host.objects.get(name="drv")
    assert result.host == host and host.uri == "test:///default" and host.detected_domain_type == "qemu"
    assert "Host drv added" in result.message
    entry = AuditEntry.objects.get(action="host.add")
    assert entry.ok and entry.target == "drv" and "libvirt" in entry.detail


def test_a_failed_connection_test_saves_nothing(staff, insecure) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        host_add(actor=staff, name="nobody", uri=NOBODY)
    assert "connection test failed" in refused.value.detail and "nothing was saved" in refused.value.detail
    assert not Host.objects.exists()
    assert not AuditEntry.objects.get(action="host.add").ok  # the attempt is on record, as failed


@pytest.mark.parametrize("name", ["", "has space", "semi;colon", "x" * 65])
def test_names_must_be_slugs(staff, insecure, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as refused:
        host_add(actor=staff, name=name, uri="test:///default")
    assert "name" in refused.value.fields and not Host.objects.exists()


def test_duplicates_are_refused(staff, insecure, test_host) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as same_name:
        host_add(actor=staff, name="testdrv", uri=NOBODY)
    assert same_name.value.fields == {"name": ["taken by another host"]}
    with pytest.raises(ValidationError) as same_uri:
        host_add(actor=staff, name="again", uri="test:///default")
    assert "is the host testdrv already" in same_uri.value.detail
    assert list(Host.objects.all()) == [test_host]


def test_tcp_is_refused_by_default_and_nothing_is_saved(staff) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="KVMWEB_ALLOW_INSECURE_HOSTS"):
        host_add(actor=staff, name="h2", uri="qemu+tcp://10.0.0.1/system")
    assert not Host.objects.exists() and not AuditEntry.objects.exists()


def test_an_ssh_host_without_an_ssh_server_is_refused(staff) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="No SSH server answered on 127.0.0.1:1"):
        host_add(actor=staff, name="h2", uri="qemu+ssh://root@127.0.0.1:1/system")
    assert not Host.objects.exists() and identity.known_hosts_pinned("[127.0.0.1]:1") == []


def test_only_staff_add_and_remove(owner, test_host, insecure) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDeniedError):
        host_add(actor=owner, name="drv", uri=NOBODY)
    with pytest.raises(PermissionDeniedError):
        host_remove(actor=owner, host=test_host)
    assert list(Host.objects.all()) == [test_host]


# ------------------------------------------------------------------------------------------------ removing
def test_remove_forgets_the_records_and_leaves_the_domains(staff, owner, other_user, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines import services
    from kvmweb.machines.models import VirtualMachine, VmShare
    from tests.conftest import spec_testdrv

    vm = services.vm_define(actor=owner, host=test_host, doc=spec_testdrv())
    services.vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    keep = hv.Connection("test:///default")  # the test driver forgets its domains when its last connection closes
    hv.host_facts(keep)
    result = host_remove(actor=staff, host=test_host)
    assert "forgot 1 VM record" in result.message
    assert not Host.objects.exists() and not VirtualMachine.objects.exists() and not VmShare.objects.exists()
    assert hv.domain_exists(keep, vm.name)  # untouched in libvirt
    hv.domain_lookup(keep, str(vm.uuid)).undefine()
    keep.close()
    assert AuditEntry.objects.filter(action="host.remove", ok=True).exists()


def test_remove_is_refused_while_jobs_run_on_the_host(staff, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.jobs.services import job_create

    job = job_create(actor=staff, kind="jobs.selftest", title="busy", host=test_host)
    with pytest.raises(ConflictError, match="1 unfinished job"):
        host_remove(actor=staff, host=test_host)
    assert Host.objects.filter(pk=test_host.pk).exists()
    job.state = job.State.SUCCEEDED
    job.save()
    host_remove(actor=staff, host=test_host)
    assert not Host.objects.exists()


# ------------------------------------------------------------------------------------------------ not answering
def test_a_failed_connection_is_remembered_for_a_while(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Pages that read every host do not retry a host that just failed: the failure is answered from memory
    until RETRY_AFTER passes (counted with a spy on libvirt.open that still calls it). The host here accepts TCP
    connections and closes them (not libvirt), so libvirt itself is asked and fails."""
    import importlib
    import socket
    import threading

    import libvirt

    registry_module = importlib.import_module("kvmweb.hypervisor.registry")
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    uri = f"qemu+tcp://127.0.0.1:{server.getsockname()[1]}/system"
    opened: list[str] = []
    real_open = libvirt.open
    monkeypatch.setattr(libvirt, "open", lambda u: opened.append(u) or real_open(u))
    conn = hv.Connection(uri)
    try:
        for _ in range(3):
            with pytest.raises(hv.HostUnavailable, match="Cannot connect to qemu\\+tcp://127.0.0.1:\\d+/system"):
                hv.host_facts(conn)
        assert opened == [uri]
        monkeypatch.setattr(registry_module, "RETRY_AFTER", 0.0)
        with pytest.raises(hv.HostUnavailable):
            hv.host_facts(conn)
        assert opened == [uri, uri]
    finally:
        stop.set()
        server.close()
        conn.close()


def test_a_port_that_refuses_is_told_without_asking_libvirt() -> None:
    conn = hv.Connection(NOBODY)
    with pytest.raises(hv.HostUnavailable) as refused:
        hv.host_facts(conn)
    assert refused.value.detail == ("Cannot connect to qemu+tcp://127.0.0.1:1/system: 127.0.0.1 port 1: "
                                    "Connection refused.")


def test_pages_and_api_say_a_host_does_not_answer(client, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    dead = Host.objects.create(name="dead", uri=NOBODY)
    client.force_login(staff)
    for url in ("/hosts/", f"/hosts/{dead.pk}/", "/", "/vms/"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert b"dead" in page.content, url
    assert b"unavailable" in client.get(f"/hosts/{dead.pk}/").content
    api = APIClient()
    api.force_login(staff)
    rows = {r["name"]: r for r in api.get("/api/v1/hosts/").json()}
    assert rows["dead"]["available"] is False and "Cannot connect" in rows["dead"]["error"]
    assert rows["testdrv"]["available"] is True and rows["testdrv"]["vms"] is not None
    detail = api.get(f"/api/v1/hosts/{dead.pk}/").json()
    assert detail["available"] is False and detail["domains"] == [] and detail["numa_cells"] == []


def test_the_vm_page_of_a_vm_on_a_dead_host_says_so(client, owner, test_host) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.models import VirtualMachine

    dead = Host.objects.create(name="dead", uri=NOBODY)
    vm = VirtualMachine.objects.create(host=dead, uuid="5a1e0000-0000-4000-8000-00000000dead", name="lost",
                                       owner=owner)
    client.force_login(owner)
    page = client.get(f"/vms/{vm.uuid}/")
    assert page.status_code == 200 and b"does not answer" in page.content and b"lost" in page.content


# ------------------------------------------------------------------------------------------------ pages and API
def test_host_page_and_api_show_capabilities(client, staff, test_host) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    page = client.get(f"/hosts/{test_host.pk}/").content.decode()
    assert "NUMA cells" in page and f'id="host-fleet-{test_host.pk}"' in page and "TCG" in page
    api = APIClient()
    api.force_login(staff)
    body = api.get(f"/api/v1/hosts/{test_host.pk}/").json()
    assert body["accel"] == "TCG" and body["cpu"]["sockets"] == 2 and len(body["numa_cells"]) == 2
    assert body["numa_cells"][1]["memory_kib"] == 4194304
    assert "test" in {d["name"] for d in body["domains"]}
    assert {p["name"] for p in body["pools"]} >= {"default-pool"}


def test_hosts_page_shows_the_portal_key(client, staff) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    page = client.get("/hosts/").content.decode()
    me = identity.ssh_identity()
    assert me.authorized_keys_line in page and 'data-copy="#portal-key-line"' in page
    api = APIClient()
    api.force_login(staff)
    assert api.get("/api/v1/hosts/ssh-key/").json()["fingerprint"] == me.fingerprint


def test_api_add_and_delete(staff, insecure) -> None:  # type: ignore[no-untyped-def]
    api = APIClient()
    api.force_login(staff)
    refused = api.post("/api/v1/hosts/", {"name": "h2", "uri": "qemu+tcp://x;y/system"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid" and "uri" in refused.json()["fields"]
    made = api.post("/api/v1/hosts/", {"name": "drv", "uri": "test:///default"}, format="json")
    assert made.status_code == 201 and made.json()["available"] is True and "added" in made.json()["detail"]
    pk = made.json()["id"]
    gone = api.delete(f"/api/v1/hosts/{pk}/")
    assert gone.status_code == 200 and "removed" in gone.json()["detail"]
    assert api.delete(f"/api/v1/hosts/{pk}/").status_code == 404


def test_page_add_form_shows_refusals(client, staff) -> None:  # type: ignore[no-untyped-def]
    client.force_login(staff)
    page = client.post("/hosts/add/", {"name": "h2", "uri": "qemu+tcp://10.0.0.1/system"})
    assert page.status_code == 200 and b"neither authentication nor encryption" in page.content
    assert not Host.objects.exists()
