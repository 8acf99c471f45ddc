"""A GRUB rescue guest for the console tests: waiting for its menu, and typing on its keyboard through libvirt
(`virsh send-key`, independent of the portal's console)."""
from __future__ import annotations

import subprocess
import time

import numpy as np

from kvmweb.machines.handles import vm_handle

from .images import decode_png

_SPECIAL = {" ": ["KEY_SPACE"], "_": ["KEY_LEFTSHIFT", "KEY_MINUS"], "-": ["KEY_MINUS"], "\n": ["KEY_ENTER"]}


def send_keys(name: str, text: str) -> None:
    """Type on the guest's keyboard through libvirt (virsh send-key: the independent oracle)."""
    for ch in text:
        keys = _SPECIAL.get(ch) or [f"KEY_{ch.upper()}"]
        subprocess.run(["virsh", "-c", "qemu:///system", "send-key", name, "--holdtime", "40", *keys],
                       check=True, capture_output=True, timeout=30)
        time.sleep(0.08)


def grub_menu_shown(vm) -> bool:  # type: ignore[no-untyped-def]
    """GRUB's menu highlights its first entry with a light bar across almost the whole screen width."""
    img = decode_png(vm_handle(vm).screenshot_png())
    light = (img.min(axis=2) > 140).mean(axis=1)
    return bool(np.any(light > 0.8))


def wait_grub_menu(vm, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not grub_menu_shown(vm):
        assert time.monotonic() < deadline, "GRUB's menu did not appear"
        time.sleep(1)
