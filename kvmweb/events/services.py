"""Turning hypervisor events into browser events: who may see a VM's state change, and what they receive."""
from __future__ import annotations

import threading
from typing import Any

from kvmweb import hypervisor as hv
from kvmweb.hosts.models import Host
from kvmweb.machines.models import VirtualMachine

from .publish import publish


def vm_state_event(event: hv.DomainEvent, host: Host | None = None) -> dict[str, Any]:
    return {
        "kind": "vm", "uuid": event.uuid, "name": event.name, "event": event.event,
        "state": event.state.slug if event.state else "undefined",
        "label": event.state.label if event.state else "undefined",
        "host": host.name if host else event.uri,
    }


def vm_event_publish(event: hv.DomainEvent, host: Host | None = None) -> None:
    """Send a VM's state change to its owner and to staff (a VM nobody owns: staff only)."""
    owner_id = VirtualMachine.objects.filter(uuid=event.uuid).values_list("owner_id", flat=True).first()
    publish(vm_state_event(event, host), user_ids=[owner_id])


def listen_host(host: Host, stop: threading.Event) -> hv.DomainEventListener:
    """Start a thread that publishes ``host``'s domain events until ``stop`` is set."""
    listener = hv.DomainEventListener(host.uri, lambda ev: vm_event_publish(ev, host))
    thread = threading.Thread(target=listener.run, args=(stop,), name=f"events-{host.name}", daemon=True)
    thread.start()
    return listener
