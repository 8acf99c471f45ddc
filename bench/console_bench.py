#!/usr/bin/env python
"""Console proxy benchmark: our proxy vs plain websockify with a static TokenFile vs a direct TCP copy.

All three carry the same RFB session from a tiny RFB server this script starts on loopback (it answers each
FramebufferUpdateRequest with one raw full-screen update, 1920x1080x32 bpp = 8.3 MB):

* direct TCP  - the client talks to the RFB server itself (the ceiling);
* TCP relay   - a plain byte copy in Python between client and server (no websocket), for scale;
* websockify  - ``python -m websockify --token-plugin TokenFile`` (what Kimchi, WebVirtCloud and nova's proxy do):
                a fork per connection, the token file re-read each time, no user/VM/Origin checks;
* kvmweb      - ``manage.py console_proxy``: Origin check, one-time token burnt in the database, session cookie ->
                user, permission re-check, the VM's display resolved through libvirt at connect time. The "VM" is a
                domain of libvirt's test driver (a node file shared by this script and the proxy) whose VNC display
                listens on the loopback port of the tiny RFB server, so the proxy's real code path runs end to end.
                The owner's bytes are relayed unparsed;
* view-only   - the same proxy for a user the VM is shared with as a viewer: what the client sends goes through the
                RFB filter (kvmweb/console/rfb.py) that drops keyboard and mouse input.

Last, the filter alone: how fast it parses a client's stream of pointer events (the busiest input a client sends).

Measured, interleaved A B C A B C (HOST.md: this machine is noisy), medians:
* throughput  - MB/s of server->client framebuffer data over one connection (FRAMES updates);
* connect p50 - websocket opened (token checked, target connected) until the RFB banner arrives;
* first frame - connect + RFB handshake + the first full framebuffer update.

Run: ``.venv/bin/python bench/console_bench.py`` (needs nothing running; about 15–30 s).
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

from common import proc_stop

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1920, 1080
FRAME = WIDTH * HEIGHT * 4
FRAMES = 8
ROUNDS = 7
CONNECTS = 35
SESSIONS = int(os.environ.get("KVMWEB_BENCH_SESSIONS", "200"))
ORIGIN = "http://127.0.0.1:8000"


# ------------------------------------------------------------------------------------------- a tiny RFB server
def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


def _rfb_session(conn: socket.socket, frame: bytes) -> None:
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(b"RFB 003.008\n")
        _recv_exact(conn, 12)
        conn.sendall(b"\x01\x01")  # one security type: None
        _recv_exact(conn, 1)
        conn.sendall(b"\x00\x00\x00\x00")  # SecurityResult OK
        _recv_exact(conn, 1)  # ClientInit
        pixel_format = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
        name = b"bench"
        conn.sendall(struct.pack(">HH", WIDTH, HEIGHT) + pixel_format + struct.pack(">I", len(name)) + name)
        header = struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, WIDTH, HEIGHT, 0)
        while True:
            request = _recv_exact(conn, 10)  # FramebufferUpdateRequest
            if request[0] != 3:
                return
            conn.sendall(header)
            conn.sendall(frame)
    except (ConnectionError, OSError):
        pass
    finally:
        conn.close()


def serve_loopback(on_connection: Callable[[socket.socket], None]) -> tuple[int, socket.socket]:
    """Listen on a free loopback port; each accepted connection is handed to ``on_connection`` in a thread."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)

    def serve() -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=on_connection, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return lsock.getsockname()[1], lsock


def start_rfb_server() -> tuple[int, socket.socket]:
    frame = bytes(range(256)) * (FRAME // 256)
    return serve_loopback(lambda conn: _rfb_session(conn, frame))


def start_tcp_relay(target_port: int) -> tuple[int, socket.socket]:
    """A plain TCP copy in Python (two threads per connection, recv_into + sendall): what a proxy costs without
    websockets, for scale."""
    def pipe(src: socket.socket, dst: socket.socket) -> None:
        buf = memoryview(bytearray(1 << 20))
        try:
            while True:
                got = src.recv_into(buf)
                if not got:
                    break
                dst.sendall(buf[:got])
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def relay(conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", target_port))
        for s in (conn, up):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
        pipe(conn, up)

    return serve_loopback(relay)


# ------------------------------------------------------------------------------------------- clients
class Stream:
    """A byte stream over TCP, or over a websocket (minimal client: unmasked binary frames in, masked out)."""

    def __init__(self, sock: socket.socket, websocket: bool) -> None:
        self.sock = sock
        self.ws = websocket
        self.pending = bytearray()
        self.frame_left = 0

    @classmethod
    def tcp(cls, port: int) -> Stream:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock, websocket=False)

    @classmethod
    def websocket(cls, port: int, path: str, cookie: str = "") -> Stream:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: binary",
                 f"Origin: {ORIGIN}"]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("handshake failed")
            head += chunk
        status, rest = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise ConnectionError(status.decode(errors="replace"))
        stream = cls(sock, websocket=True)
        stream.raw = bytearray(rest)
        return stream

    raw: bytearray
    pos: int = 0
    scratch = memoryview(bytearray(1 << 20))

    def _fill_raw(self, need: int) -> None:
        """Have at least ``need`` unread bytes buffered (unread data starts at ``pos``)."""
        if self.pos and self.pos > len(self.raw) // 2:
            del self.raw[:self.pos]
            self.pos = 0
        while len(self.raw) - self.pos < need:
            chunk = self.sock.recv(need - (len(self.raw) - self.pos))  # exactly what is missing: payload bypasses
            if not chunk:
                raise ConnectionError("closed")
            self.raw += chunk

    def _next_frame(self) -> None:
        self._fill_raw(2)
        b0, b1 = self.raw[self.pos], self.raw[self.pos + 1]
        opcode, length, offset = b0 & 0x0F, b1 & 0x7F, 2
        if length == 126:
            self._fill_raw(4)
            length, offset = struct.unpack_from(">H", self.raw, self.pos + 2)[0], 4
        elif length == 127:
            self._fill_raw(10)
            length, offset = struct.unpack_from(">Q", self.raw, self.pos + 2)[0], 10
        self.pos += offset
        if opcode == 8:
            self._fill_raw(length)
            body = bytes(self.raw[self.pos:self.pos + length])
            code = struct.unpack(">H", body[:2])[0] if length >= 2 else 0
            raise ConnectionError(f"closed {code} {body[2:].decode(errors='replace')}")
        self.frame_left = length

    def _payload(self, n: int, keep: bool) -> bytes:
        """Up to n bytes of the current frame's payload; discarded ones skip the buffer when none is pending."""
        want = min(n, self.frame_left)
        if len(self.raw) == self.pos and not keep:
            got = self.sock.recv_into(self.scratch, min(want, len(self.scratch)))
            if not got:
                raise ConnectionError("closed")
            self.frame_left -= got
            return b""
        if len(self.raw) == self.pos:
            self._fill_raw(want)
        take = min(want, len(self.raw) - self.pos)
        data = bytes(self.raw[self.pos:self.pos + take]) if keep else b""
        self.pos += take
        self.frame_left -= take
        return data

    def _consume(self, n: int, keep: bool) -> bytes:
        out = bytearray()
        left = n
        while left:
            if self.frame_left == 0:
                self._next_frame()
                continue
            before = self.frame_left
            data = self._payload(left, keep)
            left -= before - self.frame_left
            if keep:
                out += data
        return bytes(out)

    def read(self, n: int) -> bytes:
        if not self.ws:
            return _recv_exact(self.sock, n)
        return self._consume(n, keep=True)

    def drain(self, n: int) -> None:
        """Read and discard n bytes as fast as the transport allows."""
        if not self.ws:
            while n:
                got = self.sock.recv_into(self.scratch, min(n, len(self.scratch)))
                if not got:
                    raise ConnectionError("closed")
                n -= got
            return
        self._consume(n, keep=False)

    def write(self, data: bytes) -> None:
        if not self.ws:
            self.sock.sendall(data)
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        header = struct.pack(">BB", 0x82, 0x80 | len(data)) if len(data) < 126 else None
        assert header is not None
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        self.sock.close()


def rfb_handshake(stream: Stream) -> None:
    assert stream.read(12) == b"RFB 003.008\n"
    stream.write(b"RFB 003.008\n")
    count = stream.read(1)[0]
    stream.read(count)
    stream.write(b"\x01")
    assert stream.read(4) == b"\x00\x00\x00\x00"
    stream.write(b"\x01")
    init = stream.read(24)
    stream.read(struct.unpack(">I", init[20:24])[0])


def request_frame(stream: Stream) -> None:
    stream.write(struct.pack(">BBHHHH", 3, 0, 0, 0, WIDTH, HEIGHT))
    stream.read(4 + 12)
    stream.drain(FRAME)


# ------------------------------------------------------------------------------------------- the three paths
class Path_:
    def __init__(self, name: str, open_stream: Callable[[], Stream]) -> None:
        self.name = name
        self.open = open_stream
        self.throughput: list[float] = []
        self.connect: list[float] = []
        self.first_frame: list[float] = []

    def measure_throughput(self) -> None:
        stream = self.open()
        rfb_handshake(stream)
        request_frame(stream)  # warm-up
        start = time.perf_counter()
        for _ in range(FRAMES):
            request_frame(stream)
        elapsed = time.perf_counter() - start
        stream.close()
        self.throughput.append(FRAMES * FRAME / elapsed / 1e6)

    def measure_connects(self) -> None:
        for _ in range(CONNECTS // ROUNDS):
            start = time.perf_counter()
            stream = self.open()
            stream.read(12)
            self.connect.append((time.perf_counter() - start) * 1000)
            stream.close()
        start = time.perf_counter()
        stream = self.open()
        rfb_handshake(stream)
        request_frame(stream)
        self.first_frame.append((time.perf_counter() - start) * 1000)
        stream.close()


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NODE_XML = """<node>
<domain type='test'>
  <name>bench-rfb</name>
  <uuid>{uuid}</uuid>
  <memory>8192</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <graphics type='vnc' port='{port}' autoport='no' listen='127.0.0.1'><listen type='address' address='127.0.0.1'/></graphics>
  </devices>
</domain>
</node>
"""


def main() -> None:
    import uuid as uuid_mod

    tmp = Path(tempfile.mkdtemp(prefix="kvmweb-console-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    rfb_port, rfb_sock = start_rfb_server()
    try:
        vm_uuid = str(uuid_mod.uuid4())
        node = tmp / "node.xml"
        node.write_text(NODE_XML.format(uuid=vm_uuid, port=rfb_port))
        env = dict(os.environ, KVMWEB_DATABASE_URL=f"sqlite://{tmp / 'bench.sqlite3'}", KVMWEB_LOG_LEVEL="WARNING")
        os.environ.update(env)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)

        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kvmweb.settings")
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.test import Client

        from kvmweb.console.services import console_token_issue
        from kvmweb.hosts.models import Host
        from kvmweb.machines.models import VirtualMachine

        from kvmweb.machines.services import vm_share

        user = get_user_model().objects.create_user("bench", password="bench-pass-123")
        viewer = get_user_model().objects.create_user("bench-viewer", password="bench-pass-123")
        host = Host.objects.create(name="bench", uri=f"test://{node}")
        vm = VirtualMachine.objects.create(host=host, uuid=vm_uuid, name="bench-rfb", owner=user)
        vm_share(actor=user, vm=vm, user=viewer, role="viewer")

        def cookie_of(who) -> str:  # type: ignore[no-untyped-def]
            client = Client()
            client.force_login(who)
            return f"sessionid={client.cookies['sessionid'].value}"

        cookie, viewer_cookie = cookie_of(user), cookie_of(viewer)

        ours_port, plain_port = free_port(), free_port()
        log = open(tmp / "proxy.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "manage.py", "console_proxy", "--port", str(ours_port)],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        token_file = tmp / "tokens.txt"
        token_file.write_text(f"bench: 127.0.0.1:{rfb_port}\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "websockify", "--token-plugin", "TokenFile", "--token-source", str(token_file),
             f"127.0.0.1:{plain_port}"], cwd=tmp, stdout=log, stderr=subprocess.STDOUT))
        for proc, port in zip(procs, (ours_port, plain_port), strict=True):
            wait_port(port, proc)

        def ours() -> Stream:
            token = console_token_issue(actor=user, vm=vm).token  # the page fetches it before connecting: untimed
            return Stream.websocket(ours_port, f"/vnc/{vm_uuid}?token={token}", cookie)

        def view_only() -> Stream:
            token = console_token_issue(actor=viewer, vm=vm).token
            return Stream.websocket(ours_port, f"/vnc/{vm_uuid}?token={token}", viewer_cookie)

        ours_path = Path_("kvmweb proxy", ours)
        viewer_path = Path_("kvmweb proxy, view-only", view_only)
        relay_port, relay_sock = start_tcp_relay(rfb_port)
        paths = [
            Path_("direct TCP", lambda: Stream.tcp(rfb_port)),
            Path_("TCP relay (Python)", lambda: Stream.tcp(relay_port)),
            Path_("websockify + TokenFile", lambda: Stream.websocket(plain_port, "/?token=bench")),
            ours_path,
            viewer_path,
        ]
        # One-time tokens are issued before each clock starts (the page fetches one before it connects).
        for _round in range(ROUNDS):
            for path in paths:
                path.measure_throughput()
                if path is ours_path:
                    _measure_connects_untimed_issue(ours_path, ours_port, vm_uuid, cookie, user, vm)
                elif path is viewer_path:
                    _measure_connects_untimed_issue(viewer_path, ours_port, vm_uuid, viewer_cookie, viewer, vm)
                else:
                    path.measure_connects()

        report(paths)
        report_filter()
        report_concurrent(
            concurrent(lambda: Stream.websocket(plain_port, "/?token=bench"), pid=None),
            concurrent(ours, pid=procs[0].pid, issue_first=lambda: console_token_issue(actor=user, vm=vm).token,
                       open_with=lambda token: Stream.websocket(ours_port, f"/vnc/{vm_uuid}?token={token}", cookie)))
    finally:
        for proc in procs:
            proc_stop(proc, timeout=10)
        rfb_sock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def concurrent(open_stream: Callable[[], Stream], *, pid: int | None, issue_first: Callable[[], str] | None = None,
               open_with: Callable[[str], Stream] | None = None) -> dict[str, Any]:
    """SESSIONS sessions opened at once (one thread each, released together) and held open until all are in; each
    one's connect time (to the RFB banner), the errors, and the proxy's open files before, during and after."""
    tokens = [issue_first() for _ in range(SESSIONS)] if issue_first else []  # the pages fetch these first
    before = fd_count(pid) if pid else 0
    go = threading.Barrier(SESSIONS + 1)
    times: list[float] = []
    errors: list[str] = []
    streams: list[Stream] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        go.wait()
        start = time.perf_counter()
        try:
            stream = open_with(tokens[i]) if open_with else open_stream()
            stream.read(12)
        except (OSError, ConnectionError) as exc:
            with lock:
                errors.append(str(exc))
            return
        with lock:
            times.append((time.perf_counter() - start) * 1000)
            streams.append(stream)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    go.wait()
    for t in threads:
        t.join()
    during = fd_count(pid) if pid else 0
    for stream in streams:
        stream.close()
    after = before
    if pid:  # the proxy closes its side as it notices (within a second or so)
        deadline = time.monotonic() + 15
        while (after := fd_count(pid)) > before and time.monotonic() < deadline:
            time.sleep(0.1)
    return {"times": times, "errors": errors, "before": before, "during": during, "after": after}


def report_concurrent(plain: dict[str, Any], ours: dict[str, Any]) -> None:
    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    print(f"\n{SESSIONS} console sessions opened at once on one proxy process, held until all are in, then closed")
    print("| proxy | sessions in | errors | connect p50 | connect p95 | proxy's open files: before / with all open /"
          " after |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in (("websockify + TokenFile (a fork per session)", plain), ("kvmweb proxy", ours)):
        files = (f"{r['before']} / {r['during']} / {r['after']} ({'no leak' if r['after'] <= r['before'] else 'LEAK'})"
                 if r["before"] else "—")
        print(f"| {name} | {len(r['times'])} | {len(r['errors'])} | {pct(r['times'], 50):.1f} ms | "
              f"{pct(r['times'], 95):.1f} ms | {files} |")
    for r in (plain, ours):
        for error in sorted(set(r["errors"]))[:3]:
            print(f"  error: {error}")


def _measure_connects_untimed_issue(path: Path_, port: int, vm_uuid: str, cookie: str, user, vm) -> None:  # type: ignore[no-untyped-def]
    """Like Path_.measure_connects, with each one-time token issued before the clock starts (as the page does)."""
    from kvmweb.console.services import console_token_issue

    def open_with(token: str) -> Stream:
        return Stream.websocket(port, f"/vnc/{vm_uuid}?token={token}", cookie)

    for _ in range(CONNECTS // ROUNDS):
        token = console_token_issue(actor=user, vm=vm).token
        start = time.perf_counter()
        stream = open_with(token)
        stream.read(12)
        path.connect.append((time.perf_counter() - start) * 1000)
        stream.close()
    token = console_token_issue(actor=user, vm=vm).token
    start = time.perf_counter()
    stream = open_with(token)
    rfb_handshake(stream)
    request_frame(stream)
    path.first_frame.append((time.perf_counter() - start) * 1000)
    stream.close()


def report_filter() -> None:
    """The view-only filter alone: a client stream of pointer events (6 bytes each), fed 4 KiB at a time."""
    from kvmweb.console.rfb import ViewOnlyFilter

    pointer = struct.pack(">BBHH", 5, 0, 100, 200)
    chunk = pointer * (4096 // len(pointer))
    rates = []
    for _ in range(ROUNDS):
        filt = ViewOnlyFilter()
        filt.feed(b"RFB 003.008\n\x01\x01")
        start = time.perf_counter()
        for _ in range(256):
            filt.feed(chunk)
        rates.append(256 * len(chunk) / (time.perf_counter() - start) / 1e6)
    rate = statistics.median(rates)
    print(f"view-only filter alone: {rate:.1f} MB/s of pointer events = {rate * 1e6 / len(pointer) / 1000:.0f}k "
          f"messages/s (a browser sends at most a few hundred a second)")


def report(paths: list[Path_]) -> None:
    direct, relay, plain, ours, viewer = paths
    med = statistics.median
    print(f"\nConsole proxy benchmark: {FRAMES} x {WIDTH}x{HEIGHT}x32bpp raw updates per connection, "
          f"{ROUNDS} interleaved rounds, {CONNECTS} connects each; medians")
    print(f"{'path':<24} {'MB/s':>8} {'x direct':>9} {'x websockify':>13} {'connect p50 ms':>15} {'first frame ms':>15}")
    for p in paths:
        tp = med(p.throughput)
        print(f"{p.name:<24} {tp:>8.0f} {tp / med(direct.throughput):>9.2f} {tp / med(plain.throughput):>13.2f} "
              f"{med(p.connect):>15.2f} {med(p.first_frame):>15.1f}")
    print(f"\nkvmweb vs websockify throughput: {med(ours.throughput) / med(plain.throughput):.2f}x (target >= 1.0); "
          f"vs direct TCP: {med(ours.throughput) / med(direct.throughput):.2f}x (target >= 0.5); "
          f"token check + connect p50: {med(ours.connect):.1f} ms (target <= 20); "
          f"vs a Python TCP relay: {med(ours.throughput) / med(relay.throughput):.2f}x; "
          f"view-only vs owner: {med(viewer.throughput) / med(ours.throughput):.2f}x")


if __name__ == "__main__":
    main()
