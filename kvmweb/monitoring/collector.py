"""The collector: every ``KVMWEB_STATS_INTERVAL`` seconds, one bulk read of a host's domains, their rates, the
history and the latest values written to Redis, and the rows handed to ``publish`` (live charts).

Exactly one collector per host works at a time, however many processes start one: it holds a Redis lease
(``SET NX PX``, renewed every interval by its owner only); the others wait and take over within three intervals
when the holder dies. After libvirtd restarts, the connection registry reconnects on the next call.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from kvmweb import hypervisor as hv

from . import store
from .rates import host_rates, vm_rates

log = logging.getLogger(__name__)

Publish = Callable[[str, int, list[dict[str, Any]]], None]

BACKOFF_MAX = 60.0  # seconds between tries at most while a host does not answer

# Renew or release the lease only if we still hold it (compare-and-set, atomic in Redis).
RENEW_SCRIPT = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end")
RELEASE_SCRIPT = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
                  "return redis.call('del', KEYS[1]) else return 0 end")


@dataclass(frozen=True)
class Sample:
    """What one ``sample_once`` saw: ``rows`` are the running VMs (the dicts handed to ``publish``)."""

    t: int
    rows: list[dict[str, Any]]
    host: store.HostLatest | None
    domains: int
    libvirt_calls: int
    redis_commands: int = 0  # in 3 pipelined round trips (VM rings, the host's rings, the latest values)
    gone: list[str] = field(default_factory=list)


class Collector:
    """Samples one host. ``publish(host_id, t, rows)`` gets, after each sample, one dict per running VM:
    ``{"uuid", "name", "vcpus", "mem_bytes", <every metric of store.METRICS>}`` (``None`` where unknown)."""

    def __init__(self, host_uri: str, host_id: str | int, publish: Publish | None = None, *,
                 interval: float | None = None, redis_client: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.host_uri = host_uri
        self.host_id = str(host_id)
        self.publish = publish
        self.interval = float(interval if interval is not None else settings.KVMWEB_STATS_INTERVAL)
        self.redis = redis_client
        self.clock = clock
        self.token = uuid_mod.uuid4().hex
        self._stop = threading.Event()
        self._prev: dict[str, hv.DomainStats] = {}
        self._prev_t: float | None = None
        self._prev_host: hv.HostStats | None = None
        self._vms = store.HistoryWriter(store.VM)
        self._hosts = store.HistoryWriter(store.HOST)
        self.holds_lease = False
        self.backoff = 0.0  # seconds until the next try while the host does not answer (0: it answers)

    @property
    def _r(self) -> Any:
        return self.redis or store.client()

    @property
    def ttl_ms(self) -> int:
        return int(self.interval * 3 * 1000)

    # -- one sample ------------------------------------------------------------------------------------
    def sample_once(self) -> Sample:
        """Read every domain of the host in one bulk call (and the host's CPU and memory), write the history and
        the latest values, publish the running VMs' rates. Raises the hypervisor layer's errors (host down)."""
        self._vms.redis = self._hosts.redis = self.redis
        conn = hv.registry.connection(self.host_uri)
        calls = conn.calls
        domains = hv.domain_stats_all(conn)
        host = hv.host_stats(conn)
        calls = conn.calls - calls
        now = self.clock()
        elapsed = now - self._prev_t if self._prev_t is not None else 0.0
        rows: list[dict[str, Any]] = []
        samples: dict[str, tuple[float | None, ...]] = {}
        current: dict[str, hv.DomainStats] = {}
        for d in domains:
            current[d.uuid] = d
            if not d.state.is_active:
                continue
            rates = vm_rates(self._prev.get(d.uuid), d, elapsed, host.cpus)
            samples[d.uuid] = rates.values()
            rows.append({"uuid": d.uuid, "name": d.name, "vcpus": d.vcpus, "mem_bytes": d.memory_kib * 1024,
                         **rates.as_dict()})
        gone = [u for u, d in self._prev.items() if d.state.is_active and u not in samples]
        hr = host_rates(self._prev_host, host)
        host_latest = store.HostLatest(
            t=int(now), cpu_pct=hr.cpu_pct, mem_used_bytes=hr.mem_used_bytes, mem_pct=hr.mem_pct, cpus=host.cpus,
            mem_total_bytes=host.memory_total_kib * 1024, vms_running=len(samples))
        commands = self._vms.write(now, samples)
        commands += self._hosts.write(now, {self.host_id: hr.values()})
        store.latest_write(self.host_id, now, {r["uuid"]: {k: v for k, v in r.items() if k not in ("uuid", "name")}
                                               for r in rows},
                           gone, host_latest, ttl_ms=self.ttl_ms, redis_client=self.redis)
        self._prev, self._prev_t, self._prev_host = current, now, host
        if self.publish is not None:
            try:
                self.publish(self.host_id, int(now), rows)
            except Exception:  # noqa: BLE001 - live charts are a nicety; sampling goes on
                log.exception("publishing the stats of host %s failed", self.host_id)
        return Sample(t=int(now), rows=rows, host=host_latest, domains=len(domains), libvirt_calls=calls,
                      redis_commands=commands + len(rows) + (1 if gone else 0) + 1, gone=gone)

    # -- the lease ---------------------------------------------------------------------------------------
    def acquire(self) -> bool:
        """Take or keep this host's lease; ``False`` while another collector holds it."""
        key = store.lease_key(self.host_id)
        if self.holds_lease:
            self.holds_lease = bool(self._r.eval(RENEW_SCRIPT, 1, key, self.token, self.ttl_ms))
            if not self.holds_lease:
                log.warning("collector for host %s lost its lease", self.host_id)
                self._forget()
        else:
            self.holds_lease = bool(self._r.set(key, self.token, nx=True, px=self.ttl_ms))
            if self.holds_lease:
                log.info("collector for host %s took the lease", self.host_id)
        return self.holds_lease

    def release(self) -> None:
        if self.holds_lease:
            try:
                self._r.eval(RELEASE_SCRIPT, 1, store.lease_key(self.host_id), self.token)
            except Exception:  # noqa: BLE001 - Redis gone: the lease expires by itself
                log.warning("could not release the stats lease of host %s", self.host_id)
            self.holds_lease = False

    def _forget(self) -> None:
        """Another collector wrote meanwhile: our previous sample and current periods are no longer valid."""
        self._prev, self._prev_t, self._prev_host = {}, None, None
        self._vms = store.HistoryWriter(store.VM)
        self._hosts = store.HistoryWriter(store.HOST)

    # -- the loop ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, stop: threading.Event | None = None) -> None:
        """Sample every interval until :meth:`stop` (or ``stop`` is set), only while holding the lease. Redis that
        does not answer is tried again next interval; a host that does not answer is tried again after a back-off
        that doubles from one interval up to ``BACKOFF_MAX`` seconds (``self.backoff``), then every interval again
        once it answers."""
        if stop is not None:
            self._stop = stop
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    if self.acquire():
                        self.sample_once()
                        self.backoff = 0.0
                except hv.HypervisorError as exc:
                    self.backoff = min(max(self.backoff * 2, self.interval), max(BACKOFF_MAX, self.interval))
                    log.warning("stats of host %s: %s (next try in %.1f s)", self.host_id, exc, self.backoff)
                    self._prev, self._prev_t = {}, None  # no rate across an outage
                except Exception:  # noqa: BLE001 - Redis down, a bug in one sample: keep the loop alive
                    log.exception("stats of host %s failed", self.host_id)
                next_at += self.backoff or self.interval
                delay = next_at - time.monotonic()
                if delay < 0:  # we fell behind (a slow host): start again from now
                    next_at, delay = time.monotonic(), 0
                self._stop.wait(delay)
        finally:
            self.release()
