"""Changes to the usage history."""
from __future__ import annotations

from . import store


def vm_history_delete(uuid: str) -> None:
    """Forget a deleted VM's history and latest values (the machines app calls it when a VM is deleted)."""
    store.history_delete(store.VM, str(uuid))
