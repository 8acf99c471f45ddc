"""Live servers and a real browser for tests: daphne (HTTP + websockets), a Celery worker, headless Chromium.

The servers run as subprocesses on the test database file (see settings.TESTING), so tests that use them must
commit their data: use the ``transactional_db`` fixture (``portal`` pulls it in).
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("KVMWEB_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("KVMWEB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def database_url(db: dict[str, object]) -> str:
    """The KVMWEB_DATABASE_URL of a Django database (the test database, once pytest-django made it)."""
    if str(db["ENGINE"]).endswith("sqlite3"):
        return f"sqlite://{db['NAME']}"
    user = ":".join(quote(str(db[key] or ""), safe="") for key in ("USER", "PASSWORD") if db.get(key))
    return f"postgres://{user + '@' if user else ''}{db['HOST'] or ''}:{db['PORT'] or 5432}/{db['NAME']}"


def server_env() -> dict[str, str]:
    """The environment for server subprocesses: the test database, this run's queue, channel prefix and ISO pool."""
    from django.conf import settings

    env = dict(os.environ)
    env["KVMWEB_DATABASE_URL"] = database_url(settings.DATABASES["default"])
    env["KVMWEB_TESTING"] = "1"
    env["KVMWEB_ISO_POOL"], env["KVMWEB_ISO_DIR"] = settings.KVMWEB_ISO_POOL, settings.KVMWEB_ISO_DIR
    env["KVMWEB_IMAGE_POOL"], env["KVMWEB_IMAGE_DIR"] = settings.KVMWEB_IMAGE_POOL, settings.KVMWEB_IMAGE_DIR
    env["KVMWEB_BACKUP_POOL"], env["KVMWEB_BACKUP_DIR"] = settings.KVMWEB_BACKUP_POOL, settings.KVMWEB_BACKUP_DIR
    env["KVMWEB_SSH_DIR"] = settings.KVMWEB_SSH_DIR
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env["C_FORCE_ROOT"] = "1"
    env.setdefault("KVMWEB_LOG_LEVEL", "WARNING")
    return env


@dataclass
class Portal:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def web_process(env: dict[str, str] | None = None) -> Iterator[Portal]:
    """A web process (daphne serving ``kvmweb.asgi``, as in production) on 127.0.0.1 (a free port), against the
    test database; stopped when the block ends."""
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"daphne-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "kvmweb.asgi:application"],
            cwd=ROOT, env=env or server_env(), stdout=out, stderr=subprocess.STDOUT,
        )
    with stopped_at_end(proc):
        wait_port(port, proc)
        yield Portal(url=f"http://127.0.0.1:{port}", port=port, proc=proc, log=log)


@pytest.fixture(scope="session")
def portal_server(django_db_setup, django_db_blocker) -> Iterator[Portal]:  # type: ignore[no-untyped-def]
    """The web process of the browser tests, for the whole session."""
    with web_process() as portal:
        yield portal


@contextlib.contextmanager
def stopped_at_end(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> Iterator[None]:
    """Terminate a server subprocess when the block ends (kill it if it does not stop in ``timeout`` s)."""
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def portal(portal_server: Portal, transactional_db) -> Portal:  # type: ignore[no-untyped-def]
    return portal_server


@pytest.fixture(scope="session")
def celery_worker_proc(django_db_setup) -> Iterator[subprocess.Popen[bytes]]:  # type: ignore[no-untyped-def]
    """The Celery workers (Redis broker) of this run's own queues, as in production (``manage.py workers``): one
    for the default queue and one per host queue, following the hosts the tests make (every half second). Threads
    pools: a worker busy with a job still answers the pings of a worker that starts (``jobs.recovery``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = server_env()
    log = ARTIFACTS / f"celery-{os.getpid()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "workers", "--pool=threads", "--concurrency=1", "--host-concurrency=1",
             "--rescan=0.5", "--name", f"test-{os.getpid()}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    time.sleep(2)
    if proc.poll() is not None:
        raise RuntimeError(f"celery workers exited: see {log}")
    yield proc
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of its workers is left
    proc.wait()


@pytest.fixture
def browser_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright (never `playwright install`), for one test.

    Playwright's sync API keeps an asyncio loop running in the test thread while it lives, and Django's ORM refuses
    to run on a thread with a running loop: only while this fixture lives (a browser test's own synchronous code
    reads the database to check what the browser did) the test process allows it. The servers never do."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with tempfile.TemporaryDirectory(prefix="kvmweb-chromium-") as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 860},
        )
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser_context):  # type: ignore[no-untyped-def]
    pg = browser_context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    pg.close()


@contextlib.contextmanager
def collector_process(env: dict[str, str] | None = None, *, rescan: float = 1.0) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py collector`` (usage samples of every enabled host into this run's Redis prefix, live ``stats``
    events) against the test database, as its own process; stopped when the block ends. ``env``: the environment
    (default :func:`server_env`, e.g. with ``KVMWEB_STATS_INTERVAL`` changed). Its data must be committed
    (``transactional_db``)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"collector-{os.getpid()}-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "collector", "--rescan", str(rescan)],
                                cwd=ROOT, env=env or server_env(), stdout=out, stderr=subprocess.STDOUT)
    with stopped_at_end(proc):
        time.sleep(1)
        if proc.poll() is not None:
            raise RuntimeError(f"the collector exited with {proc.returncode}: see {log}")
        yield proc


def login(page, portal: Portal, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{portal.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# axe-core (npm, a devDependency: package.json) checks a page's accessibility. It reaches the page only in tests:
# evaluated through the browser's DevTools protocol, which the page's Content-Security-Policy does not govern, so
# the portal never serves it and its pages need no exception for it.
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page, *, exclude: tuple[str, ...] = ()) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """axe-core's violations on the page as it is now, every rule axe runs by default (any impact): a list of
    ``{"id", "impact", "help", "nodes": [css selector, ...]}``, empty when the page passes. ``exclude``: selectors
    of parts axe should not look at."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async (exclude) => {
            const context = exclude.length ? {exclude: exclude.map((s) => [s])} : document;
            const r = await window.axe.run(context, {resultTypes: ["violations"]});
            return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.map((n) => n.target.join(" "))}));
        }""",
        list(exclude),
    )
    return list(result)
