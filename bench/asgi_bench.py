"""ASGI server: daphne beside uvicorn (uvloop + httptools), each serving the same ``kvmweb.asgi:application`` as one
process on 127.0.0.1, both started at once and measured in turn (A B A B...), on the same database and Redis:

1. the VM list page (``/vms/``, 50 define-only VMs, staff session cookie) under 20 concurrent keep-alive clients:
   requests per second and p50/p95 latency;
2. websocket fan-out: N clients on ``/ws/events/`` (staff session), M events published to their group through the
   channel layer (Redis): the time from the first publish until every client has every event;
3. an ISO upload through the portal's upload endpoint (``POST /api/v1/isos/``, then ``PUT`` pieces of 4 MiB, as
   ``static/media/upload.js`` sends them): throughput, and the web process's private memory (``smaps_rollup``) at its
   peak during the upload over its idle level just before.

The bench's clients run in this process (asyncio streams and ``websockets``), on the same 2 cores as the servers:
figures are for comparing the two servers within one run. Everything it makes is named ``kvmwebbench-*`` and removed.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from common import ROOT, URI, django_setup, pool_remove, proc_stop, temp_dir

TMP = temp_dir("kvmwebbench-")
PID = os.getpid()
django_setup(TMP, KVMWEB_CHANNEL_PREFIX=f"kvmwebbench-{PID}:", KVMWEB_ISO_POOL=f"kvmwebbench-isos-{PID}",
             KVMWEB_ISO_DIR=str(TMP / "isos"))

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from kvmweb import hypervisor as hv  # noqa: E402

PREFIX = os.environ.get("KVMWEB_BENCH_PREFIX", "kvmwebbench-") + "asgi-"
ROUNDS = int(os.environ.get("KVMWEB_BENCH_ROUNDS", "3"))
CLIENTS = 20
LOAD_SECONDS = 4.0  # per server and round
WS_CLIENTS, WS_EVENTS = 100, 50  # 50: within the channel layer's capacity of a channel (100, its default)
UPLOAD_BYTES = int(os.environ.get("KVMWEB_BENCH_UPLOAD_MB", "512")) * 1024 * 1024
PIECE = 4 * 1024 * 1024
VMS = 50
PY = sys.executable
SERVERS = {
    "daphne": lambda port: [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "kvmweb.asgi:application"],
    "uvicorn": lambda port: [PY, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                             "--http", "httptools", "--lifespan", "off", "kvmweb.asgi:application"],
}


# -- servers -------------------------------------------------------------------------------------------------------
def start(name: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KVMWEB_TESTING": "0"}
    proc = subprocess.Popen(SERVERS[name](port), cwd=ROOT, env=env, stdout=open(TMP / f"{name}.log", "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)
    import socket

    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{name} did not listen on {port}: {(TMP / f'{name}.log').read_text()}") from None
            time.sleep(0.1)



def private_mib(pid: int) -> float:
    """The pages only this process has (its heap and buffers), without the shared library pages RSS counts."""
    roll = {line.split(":")[0]: int(line.split()[1]) for line in
            Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]}
    return (roll["Private_Clean"] + roll["Private_Dirty"]) / 1024


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# -- 1. the list page under load -------------------------------------------------------------------------------------
async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive GET: its status (the body read whole, by length or in chunks)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.read()
    return status


async def _load(port: int, session: str, seconds: float) -> tuple[int, float, list[float]]:
    """CLIENTS connections asking for the list page one after another for ``seconds``: (requests, time, latencies)."""
    request = (f"GET /vms/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: sessionid={session}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    latencies: list[float] = []
    start = time.perf_counter()
    end = start + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                status = await _get(reader, writer, request)
                assert status == 200, status
                latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return len(latencies), time.perf_counter() - start, latencies


# -- 2. websocket fan-out --------------------------------------------------------------------------------------------
async def _fanout(port: int, session: str) -> float:
    """ms from the first publish until every one of WS_CLIENTS sockets has all WS_EVENTS events."""
    import websockets
    from channels.layers import get_channel_layer

    from kvmweb.access.permissions import STAFF_GROUP

    headers = {"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"}
    sockets = [await websockets.connect(f"ws://127.0.0.1:{port}/ws/events/", additional_headers=headers,
                                        max_queue=None) for _ in range(WS_CLIENTS)]
    try:
        for ws in sockets:
            assert json.loads(await ws.recv())["kind"] == "hello"

        async def drain(ws: websockets.ClientConnection) -> None:
            seen = 0
            while seen < WS_EVENTS:
                if json.loads(await ws.recv()).get("kind") == "bench":
                    seen += 1

        layer = get_channel_layer()
        receivers = [asyncio.create_task(drain(ws)) for ws in sockets]
        t0 = time.perf_counter()
        for i in range(WS_EVENTS):
            await layer.group_send(STAFF_GROUP, {"type": "event.push", "event": {"kind": "bench", "n": i}})
        await asyncio.wait_for(asyncio.gather(*receivers), 60)
        return (time.perf_counter() - t0) * 1000
    finally:
        for ws in sockets:
            await ws.close()


# -- 3. upload -------------------------------------------------------------------------------------------------------
def _upload(port: int, token: str, host_id: int, source: Path, name: str) -> None:
    """POST the ISO's size, PUT its pieces in order (what static/media/upload.js does), then delete it."""
    auth = {"Authorization": f"Token {token}"}
    web = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    web.request("POST", "/api/v1/isos/", json.dumps({"host": host_id, "name": name, "size": source.stat().st_size}),
                {**auth, "Content-Type": "application/json"})
    reply = web.getresponse()
    iso = json.loads(reply.read())
    assert reply.status == 201, iso
    with source.open("rb") as f:
        offset = 0
        while piece := f.read(PIECE):
            web.request("PUT", f"/api/v1/isos/{iso['id']}/content/?offset={offset}", piece,
                        {**auth, "Content-Type": "application/octet-stream"})
            reply = web.getresponse()
            assert reply.status == 200, reply.read()
            reply.read()
            offset += len(piece)
    web.request("DELETE", f"/api/v1/isos/{iso['id']}/", headers=auth)
    web.getresponse().read()


def _measured_upload(port: int, token: str, host_id: int, source: Path, pid: int, name: str) -> tuple[float, float]:
    """(MiB/s, private memory growth in MiB at its peak over idle, sampled every 20 ms)."""
    idle = private_mib(pid)
    peak = [idle]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak.append(private_mib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    try:
        _upload(port, token, host_id, source, name)
    finally:
        done.set()
        sampler.join()
    return source.stat().st_size / 1024**2 / (time.perf_counter() - t0), max(peak) - idle


# -- the run ---------------------------------------------------------------------------------------------------------
def main() -> dict[str, dict[str, list[float]]]:
    setup_test_environment()
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from kvmweb.accounts.tokens import token_create
    from kvmweb.hosts.models import Host

    staff = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex, is_staff=True,
                                                 is_superuser=True)
    token = token_create(actor=staff, name="bench").secret
    host = Host.objects.create(name="local", uri=URI, domain_type="qemu")
    client = Client()
    client.force_login(staff)
    session = client.cookies["sessionid"].value
    conn = hv.registry.connection(URI)
    for i in range(VMS):
        hv.domain_define(conn, hv.DomainDocument.new(name=f"{PREFIX}{PID}-{i:02d}", domain_type="qemu",
                                                     memory_kib=65536, uuid=str(uuid.uuid4())))
    source = TMP / "upload-source.iso"
    with source.open("wb") as out:
        block = os.urandom(PIECE)
        for _ in range(UPLOAD_BYTES // PIECE):
            out.write(block)
    base = int(os.environ.get("KVMWEB_BENCH_PORT", "18865"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports = {name: base + i for i, name in enumerate(SERVERS)}
    results: dict[str, dict[str, list[float]]] = {
        name: {"requests": [], "seconds": [], "latency": [], "fanout": [], "upload": [], "memory": []}
        for name in SERVERS}
    try:
        for name, port in ports.items():
            procs[name] = start(name, port)
        for name, port in ports.items():  # warm up: the first requests import and connect what they need
            asyncio.run(_load(port, session, 1.0))
            asyncio.run(_fanout(port, session))
            small = TMP / "warm.iso"
            small.write_bytes(os.urandom(2 * PIECE))
            _upload(port, token, host.pk, small, f"kvmwebbench-warm-{name}.iso")
        for r in range(ROUNDS):
            for name, port in ports.items():
                count, seconds, latencies = asyncio.run(_load(port, session, LOAD_SECONDS))
                res = results[name]
                res["requests"].append(count)
                res["seconds"].append(seconds)
                res["latency"] += latencies
                res["fanout"].append(asyncio.run(_fanout(port, session)))
                speed, grown = _measured_upload(port, token, host.pk, source, procs[name].pid,
                                                f"kvmwebbench-{name}-{r}.iso")
                res["upload"].append(speed)
                res["memory"].append(grown)
    finally:
        for proc in procs.values():
            proc_stop(proc)
        for entry in hv.domain_entries(conn):
            if entry.name.startswith(f"{PREFIX}{PID}-"):
                hv.domain_lookup(conn, entry.uuid).undefine()
        pool_remove(os.environ["KVMWEB_ISO_POOL"])
        shutil.rmtree(TMP, ignore_errors=True)
    return results


def print_table(results: dict[str, dict[str, list[float]]]) -> None:
    figures = {}
    for name, r in results.items():
        figures[name] = {
            "rps": sum(r["requests"]) / sum(r["seconds"]),
            "p50": statistics.median(r["latency"]), "p95": pct(r["latency"], 95),
            "fanout": statistics.median(r["fanout"]),
            "upload": statistics.median(r["upload"]), "memory": max(r["memory"]),
        }
    d, u = figures["daphne"], figures["uvicorn"]
    print(f"\nASGI servers, one process each, {ROUNDS} rounds interleaved (daphne, uvicorn, daphne...); "
          f"the same kvmweb.asgi, database and Redis")
    print("| measure | daphne | uvicorn (uvloop, httptools) | uvicorn ÷ daphne | better |")
    print("|---|---:|---:|---:|---|")

    def line(label: str, key: str, unit: str, higher_better: bool, fmt: str = ".0f") -> None:
        if not d[key] or not u[key] or d[key] == u[key]:
            ratio, better = "—", "even" if d[key] == u[key] else "uvicorn" if (u[key] > d[key]) == higher_better else "daphne"
        else:
            ratio = f"{u[key] / d[key]:.2f}×"
            better = "uvicorn" if (u[key] > d[key]) == higher_better else "daphne"
        print(f"| {label} | {d[key]:{fmt}} {unit} | {u[key]:{fmt}} {unit} | {ratio} | {better} |")

    line(f"VM list page ({VMS} VMs), {CLIENTS} concurrent clients, {LOAD_SECONDS:.0f} s × {ROUNDS}: throughput",
         "rps", "req/s", True, ".1f")
    line("… latency p50", "p50", "ms", False)
    line("… latency p95", "p95", "ms", False)
    line(f"websocket fan-out: {WS_EVENTS} events to {WS_CLIENTS} clients (/ws/events/), all delivered, median",
         "fanout", "ms", False)
    line(f"ISO upload of {UPLOAD_BYTES // 1024**2} MiB in 4 MiB pieces, median", "upload", "MiB/s", True)
    line("… web process private memory at its peak over idle, largest", "memory", "MiB", False, ".1f")


if __name__ == "__main__":
    print_table(main())
