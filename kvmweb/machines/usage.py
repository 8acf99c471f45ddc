"""The collector's live usage samples → the browsers of the people who may see each VM.

``manage.py collector`` runs one :class:`kvmweb.monitoring.collector.Collector` per host; after each sample it
calls :func:`stats_publish`, which sends one ``stats`` event per reader: staff get every VM of the host, everyone
else only the VMs they own or that are shared with them or their groups (three queries per sample, however many
VMs and readers; one channel-layer message per reader, not per VM). Readers with no VM of the host get nothing.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import close_old_connections

from kvmweb.events.publish import publish_each
from kvmweb.hosts.models import Host
from kvmweb.monitoring.collector import Collector

from .selectors import host_vm_audiences

log = logging.getLogger(__name__)

# What a ``stats`` event says of each VM (monitoring.METRICS without the share of the host's CPUs).
EVENT_FIELDS = ("cpu_pct", "mem_used_bytes", "mem_pct", "disk_rd_bps", "disk_wr_bps", "disk_rd_iops",
                "disk_wr_iops", "net_rx_bps", "net_tx_bps")


def _vm_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"uuid": str(row["uuid"]), **{f: row.get(f) for f in EVENT_FIELDS}}


def stats_events(host: Host, t: float, rows: Iterable[Mapping[str, Any]]) -> dict[int | None, dict[str, Any]]:
    """The ``stats`` event of each reader of one sample (``rows``: the collector's, one per running VM):
    ``{None: staff's (every VM), user id: theirs}``."""
    vms = {str(r["uuid"]): _vm_json(r) for r in rows}
    if not vms:
        return {}
    base = {"kind": "stats", "host": host.name, "t": int(t)}
    events: dict[int | None, dict[str, Any]] = {None: {**base, "vms": list(vms.values())}}
    seen_by: dict[int, list[dict[str, Any]]] = {}
    for uuid, users in host_vm_audiences(host.pk).items():
        if uuid in vms:
            for uid in users:
                seen_by.setdefault(uid, []).append(vms[uuid])
    for uid, mine in seen_by.items():
        events[uid] = {**base, "vms": mine}
    return events


def stats_publish(host: Host, t: float, rows: Iterable[Mapping[str, Any]]) -> None:
    """Send one sample of ``host`` to the browsers: each reader only the VMs they may see. Never raises (the
    collector goes on)."""
    close_old_connections()  # a long-lived thread: drop a database connection that broke or aged
    try:
        publish_each(stats_events(host, t, rows))
    except Exception:  # noqa: BLE001 - a lost sample is replaced by the next one in a few seconds
        log.exception("could not publish the usage of %s", host)


def collect_host(host: Host, stop: threading.Event) -> threading.Thread:
    """Start a thread that samples ``host`` (one Collector) until ``stop`` is set."""
    collector = Collector(host.uri, host.pk, publish=lambda _host_id, t, rows: stats_publish(host, t, rows))
    thread = threading.Thread(target=collector.run, args=(stop,), name=f"stats-{host.name}", daemon=True)
    thread.start()
    return thread

