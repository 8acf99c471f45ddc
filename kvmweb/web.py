"""The web process: daphne serving ``kvmweb.asgi`` (HTTP + websockets), started as ``python -m kvmweb.web`` with
daphne's own arguments (``-b 127.0.0.1 -p 8000``; the application defaults to ``kvmweb.asgi:application``).

It is daphne, trimmed to what the portal serves, because every module a long-lived process imports stays in its
memory for good (issue 3: a 1 GiB upload must not take the web process over 100 MB):

- Optional modules that other packages load "if installed" are kept out: Twisted's TLS (pyOpenSSL; the portal
  speaks plain HTTP on loopback behind a TLS-terminating proxy) and DRF's optional Markdown/Pygments/requests
  support (only its browsable API and test client use them). They are installed for other processes (websockify
  needs requests), so the web process says "not installed" for itself.
- autobahn's cffi-compiled accelerators are off (``AUTOBAHN_USE_NVX=0``): our websocket messages are small JSON.
- glibc malloc returns large buffers (upload pieces) to the system at once instead of keeping them in per-thread
  arenas: a fixed mmap threshold and at most two arenas.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys

NOT_LOADED = ("OpenSSL", "markdown", "pygments", "requests")
APPLICATION = "kvmweb.asgi:application"

# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


def prepare() -> None:
    """Everything the web process sets before daphne, Django and the portal are imported."""
    for name in NOT_LOADED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None in sys.modules: "import name" fails
    os.environ.setdefault("AUTOBAHN_USE_NVX", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmweb.settings")
    libc_name = ctypes.util.find_library("c")
    if libc_name and "musl" not in libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "mallopt"):
            libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
            libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024)
            libc.mallopt(M_ARENA_MAX, 2)


def main(argv: list[str] | None = None) -> None:
    prepare()
    from daphne.cli import CommandLineInterface

    args = list(sys.argv[1:] if argv is None else argv)
    if not any(re.fullmatch(r"[\w.]+:[\w.]+", a) for a in args):
        args.append(APPLICATION)
    CommandLineInterface().run(args)


if __name__ == "__main__":
    main()
