"""Reads of the protection app: they return plain data, never a libvirt handle, and never write."""
from __future__ import annotations

from dataclasses import dataclass

from kvmweb import hypervisor as hv
from kvmweb.access.permissions import Actor, VmAction, require_vm
from kvmweb.machines.handles import vm_handle
from kvmweb.machines.models import VirtualMachine


# ------------------------------------------------------------------------------------------------ snapshots
@dataclass(frozen=True)
class VmSnapshots:
    """A VM's snapshots as a tree (``virsh snapshot-list --tree``) and whether it can take one now."""

    tree: tuple[hv.SnapshotNode, ...]
    state: hv.DomainState
    refusal: str | None  # why the VM cannot take a snapshot (its disks); None: it can

    @property
    def running(self) -> bool:
        return self.state.is_active

    @property
    def current(self) -> str | None:
        return next((n.snapshot.name for n in self.tree if n.snapshot.current), None)


def snapshot_overview(*, actor: Actor, vm: VirtualMachine) -> VmSnapshots:
    """The snapshots of ``vm`` for ``actor`` (who must see it): the tree, the state, the refusal if any. One XML
    read per snapshot (libvirt has no bulk read of them)."""
    require_vm(actor, vm, VmAction.VIEW)
    dom = vm_handle(vm)
    state = dom.state()
    refusal = hv.snapshot_refusal(dom.document())  # the disks; a running VM's memory is the form's choice
    return VmSnapshots(tree=tuple(hv.arrange_tree(hv.snapshot_list(dom))), state=state, refusal=refusal)


def snapshot_detail(*, actor: Actor, vm: VirtualMachine, name: str) -> hv.SnapshotInfo:
    """One snapshot of ``vm`` (404 in words when it has none of that name)."""
    require_vm(actor, vm, VmAction.VIEW)
    return hv.snapshot_get(vm_handle(vm), name)
