"""Browser upload of a disk image into the image library beside ``virsh vol-upload`` of the same file, and the web
process's memory while it goes.

The web process is started the way scripts/run.sh starts it (its line serving ``kvmweb.asgi:application``), on a
bench database. The portal's side does what static/media/upload.js and static/js/pieces.js do: POST
``/api/v1/images/`` (name, size), then PUT each piece in order at ``content/?offset=N`` with the page's piece size,
``Content-Type: application/octet-stream``, the session cookie and the CSRF header, one piece in flight; the last
piece has the image checked (``qemu-img info``) and completes it. The baseline is ``virsh vol-create-as`` +
``virsh vol-upload`` of the same file into the same pool. 1 GiB of random data (a raw image), interleaved A B A B,
medians. Memory: the web process's private memory (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup) and
Pss, sampled every 20 ms during one upload of 1 GiB and one of 4 GiB, as growth over the idle process (after a
warm-up upload).

Where the time goes (py-spy on the web process; figures from this machine, 2 busy cores): under daphne (the web
server before uvicorn was chosen) a whole piece is read into a temporary file before the application sees any of
it, then handed on in 8 KiB messages, so receiving and writing into libvirt cannot overlap (0.11-0.20× virsh).
uvicorn hands the body over as it arrives and the view streams it on without spooling (kvmweb/core/asgi.py); what
is left is libvirt's stream itself (each piece is a new volume-upload stream: a new iohelper process and its
fdatasync) and about 15 ms of authentication, database writes and a progress event per request. Reaching 0.6× needs
larger pieces (64 MiB moved 1 GiB about 10-25 % faster) or several pieces in flight (an upload that accepts pieces
out of order), or one libvirt stream kept open across pieces.

Everything it makes is named ``$KVMWEB_BENCH_PREFIX`` (``kvmwebbench-``) and removed at the end.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

from common import PREFIX, ROOT, URI, django_setup, pool_remove, temp_dir, virsh, web_command

TMP = temp_dir(PREFIX)
PID = os.getpid()
IMAGE_POOL = f"{PREFIX}images-{PID}"
django_setup(TMP, KVMWEB_CHANNEL_PREFIX=f"{PREFIX}{PID}:", KVMWEB_IMAGE_POOL=IMAGE_POOL,
             KVMWEB_IMAGE_DIR=str(TMP / "images"), KVMWEB_TESTING="0")

from django.core.management import call_command  # noqa: E402

RUNS = int(os.environ.get("KVMWEB_BENCH_RUNS", "5"))
GIB = 1024**3
SIZES = (GIB, 4 * GIB)  # the memory run's sizes; the throughput runs use the first
PIECE_JS = re.compile(r"const PIECE = (\d+) \* 1024 \* 1024;")


def js_piece() -> int:
    """The piece size the upload page sends (static/media/upload.js)."""
    found = PIECE_JS.search((ROOT / "static" / "media" / "upload.js").read_text())
    assert found, "static/media/upload.js names no PIECE"
    return int(found.group(1)) * 1024 * 1024


def memory_kib(pid: int) -> dict[str, int]:
    roll = {line.split(":")[0]: int(line.split()[1])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]}
    return {"private": roll["Private_Clean"] + roll["Private_Dirty"], "pss": roll["Pss"]}


class Browser:
    """The upload page's requests: session cookie and CSRF header, one connection, one piece in flight."""

    def __init__(self, port: int, session: str, csrf: str) -> None:
        self.web = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.headers = {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf,
                        "Origin": f"http://127.0.0.1:{port}", "Referer": f"http://127.0.0.1:{port}/media-library/"}

    def call(self, method: str, url: str, body: bytes | None = None, ctype: str = "") -> dict:
        headers = dict(self.headers, **({"Content-Type": ctype} if ctype else {}))
        self.web.request(method, url, body, headers)
        reply = self.web.getresponse()
        data = reply.read()
        assert reply.status < 300, (reply.status, data[:500])
        return json.loads(data) if data else {}

    def upload(self, source: Path, name: str, host_id: int, piece: int) -> int:
        size = source.stat().st_size
        row = self.call("POST", "/api/v1/images/", json.dumps({"host": host_id, "name": name, "size": size}).encode(),
                        "application/json")
        offset = 0
        with source.open("rb") as f:
            while offset < size:
                data = f.read(piece)
                answer = self.call("PUT", f"/api/v1/images/{row['id']}/content/?offset={offset}", data,
                                   "application/octet-stream")
                offset = answer["uploaded"]
        assert answer["complete"], answer
        return int(row["id"])

    def delete(self, pk: int) -> None:
        self.call("DELETE", f"/api/v1/images/{pk}/")


def make_source(path: Path, size: int) -> None:
    block = os.urandom(16 * 1024 * 1024)
    with path.open("wb") as out:
        for _ in range(size // len(block)):
            out.write(block)


def virsh_upload(source: Path, name: str) -> None:
    virsh("vol-create-as", IMAGE_POOL, name, str(source.stat().st_size), "--format", "raw")
    virsh("vol-upload", name, str(source), "--pool", IMAGE_POOL, timeout=600)


def sampled(pid: int, work) -> tuple[float, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Run ``work()``; its time and the peak of the web process's memory meanwhile (sampled every 20 ms)."""
    peak = memory_kib(pid)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            now = memory_kib(pid)
            for key in peak:
                peak[key] = max(peak[key], now[key])

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    try:
        work()
    finally:
        done.set()
        sampler.join()
    return time.perf_counter() - t0, peak


def main() -> None:
    call_command("migrate", verbosity=0)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    from kvmweb.hosts.models import Host

    staff = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex, is_staff=True)
    host = Host.objects.create(name="local", uri=URI, domain_type="qemu")
    client = Client()
    client.force_login(staff)
    port = int(os.environ.get("KVMWEB_BENCH_PORT", "18766"))
    cmd = web_command(port)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = (TMP / "web.log").open("wb")
    web = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    piece = js_piece()
    results: dict[str, object] = {"portal": [], "virsh": [], "memory": {}}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/accounts/login/")
                break
            except OSError:
                assert time.monotonic() < deadline and web.poll() is None, (TMP / "web.log").read_text()
                time.sleep(0.1)
        browser = Browser(port, client.cookies[settings.SESSION_COOKIE_NAME].value, _get_new_csrf_string())
        sources = {}
        for size in SIZES:
            sources[size] = TMP / f"source-{size // GIB}g.raw"
            make_source(sources[size], size)
        warm = TMP / "warm.raw"
        make_source(warm, 64 * 1024 * 1024)
        browser.delete(browser.upload(warm, f"{PREFIX}warm.raw", host.pk, piece))  # pool, imports, first piece
        idle = memory_kib(web.pid)
        for size in SIZES:  # memory: one upload each, its peak over the idle process
            seconds, peak = sampled(web.pid, lambda s=size: browser.delete(  # type: ignore[misc]
                browser.upload(sources[s], f"{PREFIX}mem-{s // GIB}g.raw", host.pk, piece)))
            results["memory"][size] = (seconds, {k: peak[k] - idle[k] for k in idle}, idle)  # type: ignore[index]
        source = sources[GIB]
        for i in range(RUNS):  # throughput: A B A B
            t0 = time.perf_counter()
            pk = browser.upload(source, f"{PREFIX}up-{i}.raw", host.pk, piece)
            results["portal"].append(time.perf_counter() - t0)  # type: ignore[attr-defined]
            browser.delete(pk)
            name = f"{PREFIX}virsh-{i}.raw"
            t0 = time.perf_counter()
            virsh_upload(source, name)
            results["virsh"].append(time.perf_counter() - t0)  # type: ignore[attr-defined]
            virsh("vol-delete", name, "--pool", IMAGE_POOL)
    finally:
        web.terminate()
        try:
            web.wait(15)
        except subprocess.TimeoutExpired:
            web.kill()
        pool_remove(IMAGE_POOL)
        shutil.rmtree(TMP, ignore_errors=True)
    print_table(results, cmd, piece)


def print_table(r: dict, cmd: list[str], piece: int) -> None:  # type: ignore[type-arg]
    portal, base = statistics.median(r["portal"]), statistics.median(r["virsh"])
    server = " ".join(Path(cmd[0]).name if i == 0 else w for i, w in enumerate(cmd))
    print(f"\nUpload of a 1 GiB raw image into the image library on {URI}; web process: `{server}`; "
          f"pieces of {piece // 1024**2} MiB; {RUNS} runs each, interleaved")
    print("| measure | portal (browser's requests) | baseline | ratio | target |")
    print("|---|---:|---:|---:|---|")
    ratio = base / portal
    print(f"| 1 GiB upload, median | {portal:.2f} s = {1024 / portal:.0f} MiB/s | virsh vol-create-as + vol-upload "
          f"{base:.2f} s = {1024 / base:.0f} MiB/s | {ratio:.2f}× throughput | ≥ 0.6× {'✓' if ratio >= 0.6 else '✗'} |")
    for size, (seconds, growth, idle) in r["memory"].items():
        ok = growth["private"] <= 32 * 1024
        print(f"| web process memory during a {size // GIB} GiB upload ({size / 1024**2 / seconds:.0f} MiB/s): "
              f"peak growth over idle | private +{growth['private'] / 1024:.1f} MiB, Pss "
              f"+{growth['pss'] / 1024:.1f} MiB | idle: private {idle['private'] / 1024:.0f} MiB, Pss "
              f"{idle['pss'] / 1024:.0f} MiB | — | ≤ 32 MiB {'✓' if ok else '✗'} |")


if __name__ == "__main__":
    main()
