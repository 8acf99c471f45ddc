"""View-only consoles against a real guest, with raw clients (no browser): a viewer's keys, clicks and clipboard
never reach the guest, while the screen still flows to them; the same keys from an operator do. The same for the
text console: a viewer reads the output, their input is dropped.

The guest is GRUB rescue (TCG) at its command line, reading the serial port as well as the keyboard and writing its
output to both (set up with `virsh send-key`, independent of the consoles under test). GRUB echoes every key it
gets, so its serial output shows whether any key arrived."""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest

from kvmweb.console import services
from kvmweb.console.models import ConsoleSession
from kvmweb.console.services import console_token_issue
from tests.conftest import GRUB_ISO, memtest_spec

from .conftest import session_cookie
from .grub import send_keys, wait_grub_menu
from .rfbclient import KEYSYM_ENTER, RfbClient
from .wsclient import attempt, open_ws

pytestmark = [pytest.mark.real]

LINE = "echo viewerkeys\n"


class SerialLog:
    """The guest's serial output as it arrives (from libvirt's console stream, or the portal's text console)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._lock = threading.Lock()
        self.stream: services.ConsoleStream | None = None

    def stop(self) -> None:
        """Close libvirt's console stream (a domain has one): the portal's text console may open it then."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def add(self, data: bytes) -> None:
        with self._lock:
            self._data += data

    def text(self, since: int = 0) -> str:
        with self._lock:
            raw = bytes(self._data[since:])
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode("latin-1"))

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def wait_for(self, pattern: str, since: int, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text(since))
            if found:
                return found
            assert time.monotonic() < deadline, f"not on the serial port: {pattern!r}; got {self.text(since)!r}"
            time.sleep(0.2)

    def quiet(self, since: int, seconds: float) -> str:
        """Wait ``seconds``; what arrived meanwhile."""
        time.sleep(seconds)
        return self.text(since)


@pytest.fixture
def grub_at_prompt(real_vm, owner) -> Iterator[tuple[object, SerialLog]]:  # type: ignore[no-untyped-def]
    """A GRUB rescue guest at `grub> `, its output on the serial port too, and that port's log."""
    from kvmweb.machines.handles import vm_handle
    from kvmweb.machines.services import vm_start

    vm = real_vm(memtest_spec(iso=GRUB_ISO, serial_console=True, memory_kib=128 * 1024))
    vm_start(actor=owner, vm=vm)
    wait_grub_menu(vm)
    log = SerialLog()
    log.stream = vm_handle(vm).open_serial_console(log.add, lambda _reason: None)
    try:
        send_keys(vm.name, "c")
        time.sleep(1)
        send_keys(vm.name, "serial\nterminal_input --append serial\nterminal_output --append serial\n")
        log.wait_for(r"grub> $", 0)
        yield vm, log
    finally:
        log.stop()


def _connect(proxy, vm, user) -> RfbClient:  # type: ignore[no-untyped-def]
    token = console_token_issue(actor=user, vm=vm).token
    return RfbClient(open_ws(proxy.url(f"/vnc/{vm.uuid}?token={token}"), cookie=session_cookie(user)))


def _type_slowly(rfb: RfbClient, text: str) -> None:
    """Keys 60 ms apart (as the console's Paste as keys does): a busy host must not lose them."""
    for ch in text:
        rfb.type(ch)
        time.sleep(0.06)


def _everything_a_viewer_might_try(rfb: RfbClient, screen) -> None:  # type: ignore[no-untyped-def]
    _type_slowly(rfb, LINE)
    # Several messages in one websocket frame, and one split across two frames.
    down = bytes([4, 1, 0, 0]) + KEYSYM_ENTER.to_bytes(4, "big")
    up = bytes([4, 0, 0, 0]) + KEYSYM_ENTER.to_bytes(4, "big")
    rfb.send(b"".join(bytes([4, 1, 0, 0]) + ord(c).to_bytes(4, "big") + bytes([4, 0, 0, 0]) + ord(c).to_bytes(4, "big")
                     for c in "xyz") + down + up[:3])
    rfb.send(up[3:])
    for x in range(0, screen.width, 64):  # the mouse across the screen, with clicks
        rfb.pointer(x, screen.height // 2, buttons=1)
        rfb.pointer(x, screen.height // 2, buttons=0)
    rfb.cut_text("echo pasted\n")
    rfb.qemu_key(ord("q"), 0x10, True)  # QEMU's extended key event: "q" by its scancode
    rfb.qemu_key(ord("q"), 0x10, False)


def test_viewer_keys_never_reach_the_guest_operator_keys_do(console_proxy, grub_at_prompt, owner,
                                                            other_user) -> None:  # type: ignore[no-untyped-def]
    from kvmweb.machines.services import vm_share, vm_share_update

    vm, serial = grub_at_prompt
    share = vm_share(actor=owner, vm=vm, user=other_user, role="viewer").share_id

    # The owner watches at the same time: the viewer's ClientInit asks for exclusive access, which the proxy turns
    # into a shared one, so the owner's session stays.
    with _connect(console_proxy, vm, owner).ws as owner_ws:
        owner_rfb = RfbClient(owner_ws)
        owner_screen = owner_rfb.handshake()
        with _connect(console_proxy, vm, other_user).ws as viewer_ws:
            viewer = RfbClient(viewer_ws)
            screen = viewer.handshake(shared=False)
            before = viewer.framebuffer(screen)
            assert len(set(before[i:i + 4] for i in range(0, len(before), 4))) > 1, "a flat screen"
            since = len(serial)
            _everything_a_viewer_might_try(viewer, screen)
            # The session is alive and pixels flow after all that input: a whole new update arrives.
            assert len(viewer.framebuffer(screen)) == screen.width * screen.height * screen.bpp // 8
            arrived = serial.quiet(since, 3)
            assert arrived == "", f"a viewer's input reached the guest: {arrived!r}"
        assert len(owner_rfb.framebuffer(owner_screen)) > 0  # the owner's session was not disconnected

    record = _session_record(vm, other_user)
    assert record.view_only
    assert re.search(r"view only: dropped 1 clipboard, \d+ key, \d+ pointer events", record.end_reason), record

    # Promoted to operator: the same keys, through the same proxy, reach GRUB, which echoes and runs the line.
    vm_share_update(actor=owner, vm=vm, share_id=share, role="operator")
    since = len(serial)
    with _connect(console_proxy, vm, other_user).ws as ws:
        operator = RfbClient(ws)
        operator.handshake()
        _type_slowly(operator, LINE)
        serial.wait_for(r"\Aecho viewerkeys[\r\n]+viewerkeys[\r\n]+grub> ", since)
    assert not _session_record(vm, other_user).view_only


def _session_record(vm, user) -> ConsoleSession:  # type: ignore[no-untyped-def]
    """The user's latest console session of ``vm``, once the proxy has written its end."""
    deadline = time.monotonic() + 30  # a loaded machine: the proxy notices the close on its next read
    while True:
        record = ConsoleSession.objects.filter(vm=vm, user=user).order_by("-started", "-pk").first()
        if record is not None and record.ended is not None:
            return record
        assert time.monotonic() < deadline, "the proxy did not record the session's end"
        time.sleep(0.1)


def _read_into(ws, log: SerialLog) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Copy the text console's output (binary messages) from ``ws`` into ``log`` until the socket closes."""
    from websockets.exceptions import ConnectionClosed

    def pump() -> None:
        try:
            while True:
                data = ws.recv()
                if isinstance(data, bytes):
                    log.add(data)
        except ConnectionClosed:
            pass

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def test_viewer_reads_the_text_console_but_cannot_type(portal, grub_at_prompt, owner, other_user) -> None:  # type: ignore[no-untyped-def]
    """A viewer reads GRUB's output; their input is dropped. The owner opening the text console meanwhile takes it
    over (libvirt allows one stream: a viewer must not keep those who may type out), and the same line from the
    owner reaches GRUB."""
    from kvmweb.machines.services import vm_share

    vm, fixture_log = grub_at_prompt
    fixture_log.stop()
    vm_share(actor=owner, vm=vm, user=other_user, role="viewer")
    url = portal.url.replace("http://", "ws://") + f"/ws/console/{vm.uuid}/serial/"

    seen = SerialLog()
    with open_ws(url, cookie=session_cookie(other_user), origin=portal.url) as viewer:
        _read_into(viewer, seen)
        _wait_open(vm, other_user)
        # Reading works: a line typed on the guest's keyboard (libvirt, not this socket) and GRUB's answer.
        send_keys(vm.name, "echo fromkeyboard\n")
        seen.wait_for(r"fromkeyboard[\r\n]+grub> $", 0)
        since = len(seen)
        viewer.send(LINE.replace("\n", "\r").encode())
        viewer.send("echo text frame\r")
        arrived = seen.quiet(since, 3)
        assert arrived == "", f"a viewer's input reached the guest: {arrived!r}"

        # A second viewer's window is refused while the first one reads (viewers never take over)...
        second = attempt(url, cookie=session_cookie(other_user), origin=portal.url)
        assert second.code == services.CLOSE_HOST and "already open" in second.reason, second
        # ...the owner takes the console over.
        mine = SerialLog()
        with open_ws(url, cookie=session_cookie(owner), origin=portal.url) as ws:
            _read_into(ws, mine)
            _wait_open(vm, owner)
            ws.send(LINE.replace("\n", "\r").encode())
            mine.wait_for(r"echo viewerkeys[\r\n]+viewerkeys[\r\n]+grub> ", 0)
    record = _session_record(vm, other_user)
    assert record.kind == "serial" and record.view_only
    assert record.end_reason == f"{services.TAKEN_OVER} (view only: dropped 2 input messages)", record
    # The owner's session: typed, so not view-only (its end is recorded when daphne gets to it; not waited for here).
    mine_record = ConsoleSession.objects.filter(vm=vm, user=owner, kind="serial").order_by("-started", "-pk").first()
    assert mine_record is not None and not mine_record.view_only


def _wait_open(vm, user) -> None:  # type: ignore[no-untyped-def]
    """Until the portal has opened libvirt's console stream for ``user`` (its session row exists)."""
    deadline = time.monotonic() + 15
    while not ConsoleSession.objects.filter(vm=vm, user=user, kind="serial", ended__isnull=True).exists():
        assert time.monotonic() < deadline, "the text console did not open"
        time.sleep(0.1)
