"""What benchmarks share: their temporary folder, the environment they run Django in (a throw-away SQLite
database, a Celery queue of their own) and ``virsh``. Not a benchmark itself: bench/run.py runs only *_bench.py,
which import this from their own folder."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URI = "qemu:///system"


def temp_dir(prefix: str) -> Path:
    """A new folder named ``prefix…`` that libvirt's qemu can read (the benchmark removes it at the end)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(tmp, 0o755)
    return tmp


def django_setup(tmp: Path, **env: str) -> None:
    """Set Django up for a benchmark: its database in ``tmp``, its own Celery queue, then ``env`` on top."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("KVMWEB_DATABASE_URL", f"sqlite://{tmp}/bench.sqlite3")
    os.environ.setdefault("KVMWEB_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmweb.settings")
    os.environ["KVMWEB_CELERY_QUEUE"] = f"kvmwebbench-{os.getpid()}"
    os.environ.update(env)
    import django

    django.setup()


def virsh(*args: str, check: bool = True, timeout: float = 120) -> str:
    proc = subprocess.run(["virsh", "-q", "-c", URI, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise RuntimeError(f"virsh {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def pool_remove(name: str) -> None:
    """Delete a benchmark's pool: its volumes, then the pool (whatever of it exists)."""
    for line in virsh("vol-list", name, check=False).splitlines():
        if line.split():
            virsh("vol-delete", line.split()[0], "--pool", name, check=False)
    virsh("pool-destroy", name, check=False)
    virsh("pool-undefine", name, check=False)


PREFIX = os.environ.get("KVMWEB_BENCH_PREFIX", "kvmwebbench-")  # the name of everything a benchmark makes


def web_command(port: int, bind: str = "127.0.0.1") -> list[str]:
    """The web process as scripts/run.sh starts it (its line that serves ``kvmweb.asgi:application``), on ``port``:
    a benchmark measures the server the portal really runs. ``KVMWEB_BENCH_WEB`` (a command with ``{port}``) tries
    another one."""
    if os.environ.get("KVMWEB_BENCH_WEB"):
        return shlex.split(os.environ["KVMWEB_BENCH_WEB"].format(port=port))
    for line in (ROOT / "scripts" / "run.sh").read_text().splitlines():
        if "kvmweb.asgi:application" in line and not line.lstrip().startswith("#"):
            words = shlex.split(line.split("&")[0].replace("$BIND", bind).replace("$PORT", str(port)))
            return [str(ROOT / w) if w.startswith(".venv/") else w for w in words]
    raise RuntimeError("scripts/run.sh starts no web process serving kvmweb.asgi:application")


def proc_stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a server the bench started: SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
