"""The portal's own SSH identity for remote hosts (``qemu+libssh``), and the known_hosts file that pins their keys.

Everything lives in ``settings.KVMWEB_SSH_DIR`` (never the user's ``~/.ssh``): ``id_ed25519`` (private, 0600),
``id_ed25519.pub`` (the line a host puts into ``authorized_keys``) and ``known_hosts`` (one pinned key per host
address, added when staff confirm its fingerprint, removed with the last host at that address). The key pair is
made by ``scripts/setup.sh`` (``manage.py ssh_key``) or on first need.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from kvmweb.core.errors import ValidationError

KEY_NAME = "id_ed25519"
SCAN_TIMEOUT = 5  # seconds ssh-keyscan waits for a host
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")  # liked best first
HOSTNAME_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$")  # a name, IPv4 or IPv6


@dataclass(frozen=True)
class SshIdentity:
    key_file: Path
    public_key: str  # "ssh-ed25519 AAAA... kvmweb@host"
    known_hosts: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key.split()[1])

    @property
    def authorized_keys_line(self) -> str:
        """What a host's ``authorized_keys`` takes. ``restrict``: no port, agent or X11 forwarding and no terminal,
        none of which libvirt's SSH transport needs."""
        return f"restrict {self.public_key}"


@dataclass(frozen=True)
class HostKey:
    address: str  # as known_hosts writes it: "host" on port 22, "[host]:port" otherwise
    key_type: str
    key: str  # base64

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    @property
    def line(self) -> str:
        return f"{self.address} {self.key_type} {self.key}"


def fingerprint(key_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob (what ``ssh-keygen -l`` prints)."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def ssh_dir() -> Path:
    return Path(settings.KVMWEB_SSH_DIR)


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    folder = ssh_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder


def ssh_identity() -> SshIdentity:
    """The portal's key pair, made now when it does not exist yet (idempotent, safe from several processes)."""
    with _locked() as folder:
        key = folder / KEY_NAME
        if not key.exists() or not key.with_suffix(".pub").exists():
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"kvmweb@{os.uname().nodename}",
                            "-f", str(key)], check=True, capture_output=True, timeout=30)
        known = folder / "known_hosts"
        if not known.exists():
            known.touch(mode=0o600)
        return SshIdentity(key_file=key, public_key=key.with_suffix(".pub").read_text().strip(), known_hosts=known)


def known_address(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def host_key_scan(*, host: str, port: int) -> HostKey:
    """The SSH host key ``host`` offers on ``port`` (``ssh-keyscan``; ed25519 preferred, then ECDSA, then RSA)."""
    if not HOSTNAME_RE.fullmatch(host):
        raise ValidationError(f"{host!r} is not a host name or address.", fields={"uri": ["a host name or address"]})
    try:
        proc = subprocess.run(
            ["ssh-keyscan", "-T", str(SCAN_TIMEOUT), "-p", str(port), "-t", "ed25519,ecdsa,rsa", "--", host],
            capture_output=True, text=True, timeout=SCAN_TIMEOUT * 4)
    except subprocess.TimeoutExpired:
        proc = None
    keys = []
    for line in (proc.stdout if proc else "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith("#") and parts[1] in KEY_TYPES:
            keys.append(HostKey(address=known_address(host, port), key_type=parts[1], key=parts[2]))
    if not keys:
        raise ValidationError(f"No SSH server answered on {host}:{port} (ssh-keyscan found no host key): check the "
                              "address, the port and that sshd runs there.", fields={"uri": ["no SSH server answers"]})
    return min(keys, key=lambda k: KEY_TYPES.index(k.key_type))


def _read(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def known_hosts_pinned(address: str) -> list[HostKey]:
    """The keys pinned for ``address``."""
    found = []
    for line in _read(ssh_dir() / "known_hosts"):
        parts = line.split()
        if len(parts) >= 3 and parts[0] == address:
            found.append(HostKey(address=address, key_type=parts[1], key=parts[2]))
    return found


def _write(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    tmp.chmod(0o600)
    tmp.replace(path)


def known_hosts_pin(key: HostKey) -> bool:
    """Pin ``key`` for its address; False when it was pinned already (nothing written)."""
    with _locked() as folder:
        path = folder / "known_hosts"
        lines = _read(path)
        if key.line in lines:
            return False
        _write(path, [*lines, key.line])
        return True


def known_hosts_unpin(address: str) -> int:
    """Remove every key pinned for ``address``; how many lines went."""
    with _locked() as folder:
        path = folder / "known_hosts"
        lines = _read(path)
        kept = [line for line in lines if line.split(" ", 1)[0] != address]
        if len(kept) != len(lines):
            _write(path, kept)
        return len(lines) - len(kept)
