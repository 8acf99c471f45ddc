"""A raw RFB client over the proxy's websocket (no browser, no noVNC): the handshake, framebuffer requests and
updates (Raw encoding only), and the input messages a viewer must not get through (RFC 6143 7.5, QEMU's 255/0)."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from websockets.sync.client import ClientConnection

KEYSYM_ENTER, KEYSYM_SHIFT = 0xFF0D, 0xFFE1


@dataclass
class Screen:
    width: int
    height: int
    bpp: int
    name: str


class RfbClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending = bytearray()

    def read(self, n: int, timeout: float = 30) -> bytes:
        while len(self.pending) < n:
            data = self.ws.recv(timeout=timeout)
            self.pending += data if isinstance(data, bytes) else data.encode()
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def send(self, data: bytes) -> None:
        self.ws.send(data)

    def handshake(self, *, shared: bool = True) -> Screen:
        """RFB 3.8, security None, ClientInit; the server's ServerInit."""
        assert self.read(12) == b"RFB 003.008\n"
        self.send(b"RFB 003.008\n")
        types = self.read(self.read(1)[0])
        assert 1 in types, f"the display offers no security type None: {list(types)}"
        self.send(b"\x01")
        assert self.read(4) == b"\x00\x00\x00\x00", "security handshake failed"
        self.send(b"\x01" if shared else b"\x00")
        width, height = struct.unpack(">HH", self.read(4))
        pixel_format = self.read(16)
        name = self.read(struct.unpack(">I", self.read(4))[0]).decode(errors="replace")
        self.send(struct.pack(">BxH", 2, 1) + struct.pack(">i", 0))  # SetEncodings: Raw only
        return Screen(width=width, height=height, bpp=pixel_format[0], name=name)

    def framebuffer(self, screen: Screen, *, incremental: bool = False) -> bytes:
        """Request the whole screen and read the update: its pixels, row by row (other server messages skipped)."""
        self.send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, screen.width, screen.height))
        pixels = bytearray(screen.width * screen.height * screen.bpp // 8)
        while True:
            kind = self.read(1)[0]
            if kind == 0:  # FramebufferUpdate
                break
            if kind == 2:  # Bell
                continue
            if kind == 3:  # ServerCutText
                self.read(3)
                self.read(struct.unpack(">I", self.read(4))[0])
                continue
            raise AssertionError(f"unexpected server message {kind}")
        count = struct.unpack(">xH", self.read(3))[0]
        step = screen.bpp // 8
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
            if encoding == -223:  # DesktopSize: no pixels
                continue
            assert encoding == 0, f"asked for Raw only, got encoding {encoding}"
            data = self.read(w * h * step)
            for row in range(h):
                start = ((y + row) * screen.width + x) * step
                pixels[start:start + w * step] = data[row * w * step:(row + 1) * w * step]
        return bytes(pixels)

    # ------------------------------------------------------------------------------------------- input
    def key(self, keysym: int, down: bool) -> None:
        self.send(struct.pack(">BBxxI", 4, int(down), keysym))

    def type(self, text: str) -> None:
        """Key presses and releases for lowercase letters, digits, space and '\\n' (Enter), one message each."""
        for ch in text:
            sym = KEYSYM_ENTER if ch == "\n" else ord(ch)
            self.key(sym, True)
            self.key(sym, False)

    def pointer(self, x: int, y: int, buttons: int = 0) -> None:
        self.send(struct.pack(">BBHH", 5, buttons, x, y))

    def cut_text(self, text: str) -> None:
        data = text.encode("latin-1")
        self.send(struct.pack(">Bxxxi", 6, len(data)) + data)

    def qemu_key(self, keysym: int, keycode: int, down: bool) -> None:
        """QEMU's extended key event (255/0): a key by its scancode."""
        self.send(struct.pack(">BBHII", 255, 0, int(down), keysym, keycode))
