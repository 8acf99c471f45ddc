"""Shared fixtures. Everything a test creates in libvirt carries the name prefix ``PREFIX`` and is removed by a
finalizer, even when the test fails; the session ends with a check that nothing with that prefix is left."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PREFIX = os.environ.get("KVMWEB_TEST_PREFIX", "kvmwebtest-")
SYSTEM = "qemu:///system"
MEMTEST_ISO = "/usr/lib/memtest86+/memtest86+x64.iso"
GRUB_ISO = "/usr/lib/grub-rescue/grub-rescue-cdrom.iso"
ARTIFACTS = Path(os.environ.get("KVMWEB_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the golden files from what the code renders now (review the diff, then commit)")
    parser.addoption("--db-only", action="store_true", default=False,
                     help="run only the tests that use the database (the PostgreSQL pass, docs/testing.md)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--db-only``: deselect the tests that never touch the database (they would run the same on any)."""
    if not config.getoption("--db-only"):
        return
    uses_db = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}
    keep, drop = [], []
    for item in items:
        needs = item.get_closest_marker("django_db") or uses_db & set(getattr(item, "fixturenames", ()))
        (keep if needs else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """pytest-django's test database, and before it is dropped: PostgreSQL refuses to drop a database while a
    connection is open, so the connections that threads of the tests opened (listeners, collectors) are closed."""
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``golden(name, text)``: ``text`` must equal the file ``golden/<name>`` beside the test module. A missing file
    fails; only an explicit ``pytest --update-golden`` writes them."""
    def check(name: str, text: str) -> None:
        path = request.path.parent / "golden" / name
        text = text.rstrip("\n") + "\n"
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        if not path.exists():
            pytest.fail(f"golden file {path} is missing: render it with `pytest --update-golden`, review it, "
                        "commit it", pytrace=False)
        assert text == path.read_text(), f"{name} differs from its golden file (pytest --update-golden rewrites it)"

    return check


def virsh(*args: str, check: bool = True, uri: str = SYSTEM) -> str:
    """Run virsh against ``uri``: the independent oracle tests cross-check the portal with."""
    proc = subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def libvirt_available() -> bool:
    return subprocess.run(["virsh", "-c", SYSTEM, "uri"], capture_output=True).returncode == 0


def kvm_usable() -> bool:
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def unique_name(tag: str = "vm") -> str:
    return f"{PREFIX}{tag}-{uuid_mod.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------- users/hosts
@pytest.fixture
def owner(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="alice", password="alice-pass-123")


@pytest.fixture
def other_user(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(username="bob", password="bob-pass-123")


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    return django_user_model.objects.create_user(
        username="root-admin", password="admin-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def test_host(db):  # type: ignore[no-untyped-def]
    """libvirt's in-process test driver: fast, no daemon. Its state is shared by the whole test process."""
    from kvmweb.hosts.models import Host

    host = Host.objects.create(name="testdrv", uri="test:///default", domain_type="auto", detected_domain_type="test")
    yield host
    _cleanup_prefixed("test:///default")
    _remove_backup_pool("test:///default")


@pytest.fixture
def qemu_host(db):  # type: ignore[no-untyped-def]
    from kvmweb.hosts.models import Host
    from kvmweb.hosts.services import host_probe

    if not libvirt_available():
        pytest.fail("qemu:///system does not answer: run the tests through `make test`, which starts libvirtd")
    host = Host.objects.create(name="local", uri=SYSTEM)
    host_probe(host=host)
    return host


def _remove_backup_pool(uri: str) -> None:
    """The portal's backup pool, made on demand by a backup (the test driver keeps it for the whole process)."""
    from django.conf import settings

    from kvmweb import hypervisor as hv

    try:
        pool = hv.pool_lookup(hv.registry.connection(uri), settings.KVMWEB_BACKUP_POOL)
    except hv.PoolNotFound:
        return
    for vol in pool.volumes():
        pool.volume(vol.name).delete()
    if pool.is_active():
        pool.stop()
    pool.undefine()


def _cleanup_prefixed(uri: str) -> None:
    """Remove every domain with the test prefix on ``uri`` (the test driver keeps state per process)."""
    from kvmweb import hypervisor as hv

    conn = hv.registry.connection(uri)
    for row in hv.domain_list(conn, sizes=False):
        if row.name.startswith(PREFIX):
            dom = hv.domain_lookup(conn, row.uuid)
            if row.state.is_active:
                dom.destroy()
            dom.undefine()


# ---------------------------------------------------------------------------------------------- domains
def spec_testdrv(name: str | None = None, *, devices: tuple[object, ...] = (), **kw: object):  # type: ignore[no-untyped-def]
    """A domain document for libvirt's test driver (``devices``: typed devices to add)."""
    from kvmweb import hypervisor as hv

    kw.setdefault("memory_kib", 256 * 1024)
    kw.setdefault("vcpus", 1)
    doc = hv.DomainDocument.new(name=name or unique_name(), domain_type="test", **kw)  # type: ignore[arg-type]
    for device in devices:
        doc.add_device(device)  # type: ignore[type-var]
    return doc


def memtest_spec(name: str | None = None, *, disk: str | None = None, domain_type: str = "qemu",
                 iso: str = MEMTEST_ISO, graphics: str = "none", serial_console: bool = False,
                 memory_kib: int = 96 * 1024, vcpus: int = 1):  # type: ignore[no-untyped-def]
    """A guest that sends nothing on any network: it boots memtest86+ (or GRUB rescue) from a CD-ROM."""
    from kvmweb import hypervisor as hv

    doc = hv.DomainDocument.new(name=name or unique_name(), domain_type=domain_type, memory_kib=memory_kib,
                                vcpus=vcpus, boot=())
    doc.add_device(hv.Disk.new(target="sda", device="cdrom", bus="sata", source=iso, format="raw",
                               shared_media=True, boot_order=1))
    if disk:
        doc.add_device(hv.Disk.new(target="vda", bus="virtio", source=disk, format="qcow2", boot_order=2))
    if serial_console:
        doc.add_device(hv.Serial.pty())
        doc.add_device(hv.Console.pty())
    doc.add_device(hv.Graphics.vnc(listen="none") if graphics == "none" else hv.Graphics.vnc(listen="address"))
    doc.add_device(hv.Video.new())
    return doc


# ---------------------------------------------------------------------------------------------- real libvirt
@pytest.fixture(scope="session")
def test_pool() -> Iterator[dict[str, str]]:
    """A directory storage pool in a temporary folder, for volumes the real tests make."""
    if not libvirt_available():
        pytest.fail("qemu:///system does not answer: run the tests through `make test`")
    name = f"{PREFIX}pool-{os.getpid()}"
    path = tempfile.mkdtemp(prefix=f"{PREFIX}pool-")
    os.chmod(path, 0o755)
    virsh("pool-define-as", name, "dir", "--target", path)
    virsh("pool-start", name)
    yield {"name": name, "path": path}
    remove_pool(name)
    shutil.rmtree(path, ignore_errors=True)


def remove_pool(name: str) -> None:
    """Delete a test pool's volumes, stop it and undefine it (whatever of it exists)."""
    for line in virsh("vol-list", name, check=False).splitlines():
        if line.split():
            virsh("vol-delete", line.split()[0], "--pool", name, check=False)
    virsh("pool-destroy", name, check=False)
    virsh("pool-undefine", name, check=False)


@pytest.fixture
def make_volume(test_pool: dict[str, str]) -> Callable[..., str]:
    """Create a qcow2 volume in the test pool; returns its path (removed with the pool at the end)."""
    def make(name: str | None = None, size: str = "64M", fmt: str = "qcow2") -> str:
        vol = f"{name or unique_name('disk')}.{fmt}"
        virsh("vol-create-as", test_pool["name"], vol, size, "--format", fmt)
        return virsh("vol-path", vol, "--pool", test_pool["name"]).strip()

    return make


@pytest.fixture
def cleanup_domains() -> Iterator[list[str]]:
    """Append domain names to the yielded list; each is destroyed and undefined after the test, whatever happens."""
    names: list[str] = []
    yield names
    for name in names:
        virsh("destroy", name, check=False)
        virsh("undefine", name, "--managed-save", "--snapshots-metadata", "--nvram", check=False)


@pytest.fixture
def real_vm(qemu_host, owner, cleanup_domains):  # type: ignore[no-untyped-def]
    """A factory: define a guest on qemu:///system owned by ``owner`` through the service layer."""
    from kvmweb.machines.services import vm_define

    def make(doc=None, *, user=None):  # type: ignore[no-untyped-def]
        doc = doc or memtest_spec()
        cleanup_domains.append(doc.name)
        return vm_define(actor=user or owner, host=qemu_host, doc=doc)

    return make


_POOLS_AT_START: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail the session if a test left a prefixed domain, network or volume behind on qemu:///system, or a pool of
    any name that was not there when the session began (tools such as virt-install define pools for folders they
    look at)."""
    if libvirt_available():
        _POOLS_AT_START[:] = virsh("pool-list", "--all", "--name", check=False).split()
    yield
    if not libvirt_available():
        return
    left = [f"domain {n}" for n in virsh("list", "--all", "--name", check=False).split() if n.startswith(PREFIX)]
    left += [f"network {n}" for n in virsh("net-list", "--all", "--name", check=False).split() if n.startswith(PREFIX)]
    for pool in virsh("pool-list", "--all", "--name", check=False).split():
        if pool.startswith(PREFIX):
            left.append(f"pool {pool}")
            continue
        for line in virsh("vol-list", pool, check=False).splitlines():
            parts = line.split()
            if parts and parts[0].startswith(PREFIX):
                left.append(f"volume {pool}/{parts[0]}")
    before = set(_POOLS_AT_START)
    left += [f"pool {p} (defined during the run)" for p in virsh("pool-list", "--all", "--name", check=False).split()
             if p not in before and not p.startswith("kvmwebtest-")]  # another run's prefix: its own check
    if left:
        pytest.fail("tests left these behind: " + ", ".join(left), pytrace=False)


@pytest.fixture(scope="session")
def second_host(no_leftovers):  # type: ignore[no-untyped-def]
    """A second, independent libvirt host (tests/secondhost.py) for the whole session, started on first use;
    stopped at the end, and the session fails if its namespace, veth or processes outlive it."""
    from tests.secondhost import second_host_down, second_host_up

    host = second_host_up()
    yield host
    left = second_host_down(host)
    if left:
        pytest.fail("the second host left these behind: " + ", ".join(left), pytrace=False)


@pytest.fixture
def qemu_host2(db, second_host):  # type: ignore[no-untyped-def]
    """The second host as the portal's Host record (reached over qemu+tcp: tests only); its prefixed domains are
    removed after the test."""
    from kvmweb.hosts.models import Host
    from kvmweb.hosts.services import host_probe

    host = Host.objects.create(name="second", uri=second_host.tcp_uri)
    host_probe(host=host)
    yield host
    for name in virsh("list", "--all", "--name", check=False, uri=second_host.tcp_uri).split():
        if name.startswith(PREFIX):
            virsh("destroy", name, check=False, uri=second_host.tcp_uri)
            virsh("undefine", "--snapshots-metadata", name, check=False, uri=second_host.tcp_uri)


@pytest.fixture(scope="session", autouse=True)
def portal_ssh_dir() -> Iterator[Path]:
    """The portal's SSH identity and known_hosts (settings.KVMWEB_SSH_DIR) for this run and the servers it starts:
    a temporary folder, never var/ssh; removed at the end."""
    from django.conf import settings

    base = Path(tempfile.mkdtemp(prefix=f"{PREFIX}ssh-"))
    old = settings.KVMWEB_SSH_DIR
    settings.KVMWEB_SSH_DIR = str(base)
    yield base
    settings.KVMWEB_SSH_DIR = old
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def second_host_trusts_portal(second_host, portal_ssh_dir):  # type: ignore[no-untyped-def]
    """The second host's sshd accepts the portal's (test) SSH key: its public half is in host 2's authorized_keys."""
    from kvmweb.hosts.identity import ssh_identity

    with (second_host.base / "ssh" / "authorized_keys").open("a") as keys:
        keys.write(ssh_identity().authorized_keys_line + "\n")
    return second_host


def _run_pool(kind: str, setting: str, folder: str) -> Iterator[str]:
    """Point settings.KVMWEB_<setting>_POOL / _DIR at a prefixed pool in a temporary folder for the run; yield the
    folder; put the settings back and remove the pool and the folder at the end."""
    from django.conf import settings

    base = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-")
    os.chmod(base, 0o755)
    pool = f"{PREFIX}{kind}-{os.getpid()}"
    pool_key, dir_key = f"KVMWEB_{setting}_POOL", f"KVMWEB_{setting}_DIR"
    old = getattr(settings, pool_key), getattr(settings, dir_key)
    setattr(settings, pool_key, pool)
    setattr(settings, dir_key, f"{base}/{folder}")
    yield getattr(settings, dir_key)
    setattr(settings, pool_key, old[0])
    setattr(settings, dir_key, old[1])
    if libvirt_available():
        remove_pool(pool)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def iso_pool_dir(no_leftovers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The portal's ISO pool, for this run and the servers it starts (tests.live.server_env): a prefixed pool in a
    temporary folder, never the host's real ISO library; removed at the end (before the leftover check)."""
    yield from _run_pool("isos", "ISO", "isos")


@pytest.fixture(scope="session", autouse=True)
def image_pool_dir(no_leftovers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The portal's image pool (the image library's disk images), for this run and the servers it starts: a
    prefixed pool in a temporary folder; removed at the end (before the leftover check)."""
    yield from _run_pool("imgs", "IMAGE", "images")


@pytest.fixture(scope="session", autouse=True)
def backup_pool_dir(no_leftovers) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The portal's backup pool (kvmweb.protection), for this run and the servers it starts: a prefixed pool in a
    temporary folder, never the host's real one; removed at the end (before the leftover check)."""
    yield from _run_pool("backups", "BACKUP", "backups")


@pytest.fixture(scope="session", autouse=True)
def redis_keys_removed() -> Iterator[None]:
    """What this run left in Redis is deleted at the end: the usage history its collectors wrote (under its own
    KVMWEB_STATS_PREFIX; rings would otherwise stay for up to 31 days) and its Celery queues and their bindings —
    the run's queue and the ones the killed-worker tests make (``<queue>-kill``, ``<PREFIX>kill-<pid>``), where a
    redelivered message may wait. Nothing to do when Redis does not answer (fast tests)."""
    yield
    from django.conf import settings

    from kvmweb.monitoring import store

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    patterns = (f"{store.prefix()}*", f"{queue}*", f"_kombu.binding*.{queue}*", f"*{PREFIX}kill-{os.getpid()}*")
    try:
        r = store.client()
        keys = {key for pattern in patterns for key in r.scan_iter(match=pattern)}
        if keys:
            r.delete(*keys)
    except Exception:  # noqa: BLE001 - no Redis, nothing was written
        pass


@pytest.fixture(autouse=True)
def no_queue_check_in_fast_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fast tests run without Redis: the check that the job queue answers before a job is queued
    (``jobs.services.job_queue_check``) is off for them (``KVMWEB_QUEUE_CHECK_TIMEOUT=0``); real and browser tests
    keep it. Tests of the check turn it back on with the ``settings`` fixture."""
    if request.node.get_closest_marker("real") or request.node.get_closest_marker("browser"):
        yield
        return
    from django.conf import settings

    old = settings.KVMWEB_QUEUE_CHECK_TIMEOUT
    settings.KVMWEB_QUEUE_CHECK_TIMEOUT = 0
    yield
    settings.KVMWEB_QUEUE_CHECK_TIMEOUT = old


@pytest.fixture(scope="session", autouse=True)
def default_pool_dir(no_leftovers) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    """The newcomer default pool (``manage.py bootstrap``, ``storage.services.pool_default_ensure``) of this run: a
    prefixed pool in a temporary folder, never libvirt's real ``default`` pool; removed at the end if a test made
    it (before the leftover check)."""
    from django.conf import settings

    base = tempfile.mkdtemp(prefix=f"{PREFIX}images-")
    os.chmod(base, 0o755)
    pool = f"{PREFIX}default-{os.getpid()}"
    old = settings.KVMWEB_DEFAULT_POOL, settings.KVMWEB_DEFAULT_POOL_DIR
    settings.KVMWEB_DEFAULT_POOL, settings.KVMWEB_DEFAULT_POOL_DIR = pool, f"{base}/images"
    yield {"name": pool, "path": f"{base}/images"}
    settings.KVMWEB_DEFAULT_POOL, settings.KVMWEB_DEFAULT_POOL_DIR = old
    if libvirt_available():
        remove_pool(pool)
    shutil.rmtree(base, ignore_errors=True)


# Live servers and the browser (tests/live.py): daphne, a Celery worker, headless Chromium.
from tests.live import browser_context, celery_worker_proc, page, portal, portal_server  # noqa: E402,F401
