"""A second, independent libvirt host for the many-hosts tests (``scripts/second-host.sh``): a libvirtd in
network namespaces of its own, reached as ``qemu+tcp`` or ``qemu+libssh`` (pinned host key) over a veth pair.

Several test runs may share this machine: each takes the first free slot (its own namespace, veth and /30)."""
from __future__ import annotations

import fcntl
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "second-host.sh"
LOCK = Path("/run/lock/kvmweb-second-host.lock")


@dataclass(frozen=True)
class SecondHost:
    base: Path
    namespace: str
    veth: str
    init_pid: int
    h1_ip: str  # this host's end of the pair (migrating back listens here)
    h2_ip: str
    tcp_uri: str
    libssh_uri: str
    host_key: Path  # host 2's public SSH host key
    client_key: Path  # the private key host 2's sshd accepts
    known_hosts: Path  # pins host 2's key

    @property
    def disks(self) -> Path:
        """A folder that is host 2's own: the same path is another folder on this host."""
        return self.base / "disks"

    @property
    def shared(self) -> Path:
        """A folder both hosts see."""
        return self.base / "shared"


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def second_host_up() -> SecondHost:
    base = Path(tempfile.mkdtemp(prefix="kvmwebtest-h2-"))
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        taken = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        slot = next(n for n in range(1, 251) if f"kvmweb-h2-{n}" not in taken.split())
        proc = subprocess.run([str(SCRIPT), "up", str(base), str(slot)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"the second host did not start: {proc.stdout}{proc.stderr}")
    env = _read_env(base / "env")
    return SecondHost(
        base=base, namespace=env["NS"], veth=env["VETH"], init_pid=int(env["INIT_PID"]), h1_ip=env["H1IP"],
        h2_ip=env["H2IP"], tcp_uri=env["H2_TCP"], libssh_uri=env["H2_LIBSSH"], host_key=Path(env["H2_HOST_KEY"]),
        client_key=Path(env["CLIENT_KEY"]), known_hosts=Path(env["KNOWN_HOSTS"]),
    )


def second_host_down(host: SecondHost) -> list[str]:
    """Stop it; returns what is left behind (empty when nothing is)."""
    subprocess.run([str(SCRIPT), "down", str(host.base)], capture_output=True, text=True, timeout=60)
    left = []
    if host.namespace in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split():
        left.append(f"namespace {host.namespace}")
    if subprocess.run(["ip", "link", "show", host.veth], capture_output=True).returncode == 0:
        left.append(f"veth {host.veth}")
    if Path(f"/proc/{host.init_pid}").exists():
        left.append(f"process {host.init_pid}")
    subprocess.run(["rm", "-rf", str(host.base)], check=False)
    return left
