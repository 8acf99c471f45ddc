"""Domain events of every host → the portal's records and the browsers that may see each VM.

``manage.py event_listener`` runs :func:`listen_host` for each enabled host (``hosts.follow``: hosts added,
removed, enabled or disabled are followed within seconds). Each event first keeps the records
true (a VM defined or undefined with ``virsh`` gains or loses its record at once), then goes to the people who may
see the VM (its owner, the users and groups it is shared with) and to staff over ``/ws/events/``. After each (re)connection the listener reconciles the host's records with one
listing, because events sent while it was away are lost.
"""
from __future__ import annotations

import logging
import threading

from django.db import close_old_connections

from kvmweb import hypervisor as hv
from kvmweb.events.publish import publish
from kvmweb.hosts.models import Host

from .selectors import host_drift, vm_audience
from .services import vm_record_forget, vm_record_seen, vm_records_sync, vm_state_event

log = logging.getLogger(__name__)


def vm_event_publish(event: hv.DomainEvent, host: Host | None = None) -> None:
    """Keep the records true, then send a VM's state change to who may see it and to staff (unowned and not
    shared: staff only)."""
    audience = vm_audience(event.uuid)  # read first: an undefine drops the record and its shares
    if host is not None:
        try:
            if event.event == "defined":
                vm_record_seen(host=host, uuid=event.uuid, name=event.name)
            elif event.event == "undefined":
                vm_record_forget(host=host, uuid=event.uuid)
        except hv.HypervisorError as exc:
            log.warning("could not follow %s of %s on %s: %s", event.event, event.name, host, exc.detail)
    publish(vm_state_event(event, host), user_ids=audience)


def host_records_sync(host: Host) -> None:
    """Reconcile ``host``'s records with libvirt (one listing): after the listener (re)connects."""
    vm_records_sync([host_drift(host)])


def listen_host(host: Host, stop: threading.Event) -> threading.Thread:
    """Start a thread that follows ``host``'s domain events until ``stop`` is set (``hosts_follow``'s ``start``);
    a host that does not answer is tried again, backing off up to 30 s."""

    def on_event(event: hv.DomainEvent) -> None:
        close_old_connections()  # a long-lived thread: drop a database connection that broke or aged
        vm_event_publish(event, host)

    def on_status(status: str) -> None:
        if status == "connected":
            close_old_connections()
            try:
                host_records_sync(host)
            except Exception:  # noqa: BLE001 - the listener goes on; the next list read reconciles
                log.exception("could not reconcile the records of %s", host)

    listener = hv.DomainEventListener(host.uri, on_event, on_status=on_status)
    thread = threading.Thread(target=listener.run, args=(stop,), name=f"events-{host.name}", daemon=True)
    thread.start()
    return thread
