"""The view-only filter: what a viewer's client may send to a VM's VNC server (RFC 6143, plus QEMU's extensions).

The console proxy runs the client→server byte stream of a view-only session through :class:`ViewOnlyFilter`; the
server→client stream (the screen) is never parsed. The filter reads the stream as RFB messages, whatever the
websocket framing (a message split over frames, several in one frame), with a buffer of at most one message header
(20 bytes): message bodies are counted, never buffered, so a 2 GiB ClientCutText costs no memory.

Passed (everything a viewer needs to see the screen):

- the handshake: ProtocolVersion (3.7 or 3.8 only: in 3.3 the server picks the security type, which the client
  stream does not show), the security type (None, or VNC authentication and its 16-byte response), ClientInit
  with its shared flag forced to 1 (a viewer never disconnects the other clients);
- SetPixelFormat (0), SetEncodings (2), FramebufferUpdateRequest (3);
- QEMU audio (255/1: enable, disable, set format): it only asks for the guest's sound *output*.

Dropped, counted (input, or a change to the guest): KeyEvent (4), PointerEvent (5), ClientCutText (6), QEMU
extended key event (255/0), SetDesktopSize (251: asks the guest to change its screen resolution).

Anything else (another security type, another protocol version, an unknown message or QEMU sub-message: xvp's
power actions (250) included) raises :class:`RfbViolation`: the proxy closes the connection with its reason and
never passes an unparsed byte.
"""
from __future__ import annotations

import struct

VERSIONS = (b"RFB 003.007\n", b"RFB 003.008\n")
SECURITY_NONE, SECURITY_VNC = 1, 2

# Client→server message types (RFC 6143 7.5; QEMU ui/vnc.h).
SET_PIXEL_FORMAT, SET_ENCODINGS, FRAMEBUFFER_UPDATE_REQUEST = 0, 2, 3
KEY_EVENT, POINTER_EVENT, CLIENT_CUT_TEXT = 4, 5, 6
SET_DESKTOP_SIZE, QEMU = 251, 255
QEMU_EXT_KEY_EVENT, QEMU_AUDIO = 0, 1
QEMU_AUDIO_SET_FORMAT = 2

_VERSION, _SECURITY, _VNC_AUTH, _CLIENT_INIT, _MESSAGES = range(5)


class RfbViolation(Exception):
    """The client sent something a view-only console does not allow (the reason says what)."""


class ViewOnlyFilter:
    """Feed it the client's bytes as they come; it returns the bytes to forward to the VNC server."""

    def __init__(self) -> None:
        self._phase = _VERSION
        self._head = bytearray()  # the current message's header, at most 20 bytes
        self._pass = 0  # body bytes of a passed message still to forward
        self._skip = 0  # body bytes of a dropped message still to discard
        self.dropped: dict[str, int] = {}

    def feed(self, data: bytes) -> bytes:
        out: list[bytes | memoryview] = []
        view = memoryview(data)
        i, end = 0, len(view)
        while i < end:
            if self._pass:
                take = min(self._pass, end - i)
                out.append(view[i:i + take])
                self._pass -= take
                i += take
                continue
            if self._skip:
                take = min(self._skip, end - i)
                self._skip -= take
                i += take
                continue
            need = self._header_size()
            take = min(need - len(self._head), end - i)
            self._head += view[i:i + take]
            i += take
            if len(self._head) == need and self._header_size() == need:
                out.append(self._complete())
                self._head.clear()
        return b"".join(out)

    def summary(self) -> str:
        """What was dropped, for the session's audit entry: "dropped 12 key, 40 pointer events" or ""."""
        if not self.dropped:
            return ""
        return "dropped " + ", ".join(f"{n} {kind}" for kind, n in sorted(self.dropped.items())) + " events"

    # ------------------------------------------------------------------------------------------- the parser
    def _header_size(self) -> int:
        """The length of the current header, as far as the bytes read so far tell (it grows as they tell more)."""
        head = self._head
        if self._phase == _VERSION:
            return 12
        if self._phase == _VNC_AUTH:
            return 16
        if self._phase in (_SECURITY, _CLIENT_INIT) or not head:
            return 1
        kind = head[0]
        if kind in _FIXED:
            return _FIXED[kind]
        if kind != QEMU:
            raise RfbViolation(f"message type {kind} is not allowed in a view-only console")
        if len(head) < 2:
            return 2
        if head[1] == QEMU_EXT_KEY_EVENT:
            return 12
        if head[1] != QEMU_AUDIO:
            raise RfbViolation(f"QEMU message {head[1]} is not allowed in a view-only console")
        if len(head) < 4:
            return 4
        operation = struct.unpack_from(">H", head, 2)[0]
        if operation > QEMU_AUDIO_SET_FORMAT:
            raise RfbViolation(f"QEMU audio operation {operation} is unknown")
        return 10 if operation == QEMU_AUDIO_SET_FORMAT else 4

    def _complete(self) -> bytes:
        """Act on a whole header: the bytes to forward now (the body follows through ``_pass`` or ``_skip``)."""
        head = bytes(self._head)
        if self._phase == _VERSION:
            if head not in VERSIONS:
                raise RfbViolation("a view-only console needs RFB 3.7 or 3.8")
            self._phase = _SECURITY
            return head
        if self._phase == _SECURITY:
            if head[0] not in (SECURITY_NONE, SECURITY_VNC):
                raise RfbViolation(f"security type {head[0]} cannot be checked in a view-only console")
            self._phase = _VNC_AUTH if head[0] == SECURITY_VNC else _CLIENT_INIT
            return head
        if self._phase == _VNC_AUTH:
            self._phase = _CLIENT_INIT
            return head
        if self._phase == _CLIENT_INIT:
            self._phase = _MESSAGES
            return b"\x01"  # shared: never ask the server to disconnect the other clients
        kind = head[0]
        if kind == SET_ENCODINGS:
            self._pass = 4 * struct.unpack_from(">H", head, 2)[0]
            return head
        if kind in (SET_PIXEL_FORMAT, FRAMEBUFFER_UPDATE_REQUEST) or (kind == QEMU and head[1] == QEMU_AUDIO):
            return head
        if kind == CLIENT_CUT_TEXT:
            self._skip = abs(struct.unpack_from(">i", head, 4)[0])  # negative: the extended clipboard format
        elif kind == SET_DESKTOP_SIZE:
            self._skip = 16 * head[6]
        name = _DROPPED[kind]
        self.dropped[name] = self.dropped.get(name, 0) + 1
        return b""


# Header sizes of the messages whose size the first byte tells (the body's length, if any, is in the header).
_FIXED = {SET_PIXEL_FORMAT: 20, SET_ENCODINGS: 4, FRAMEBUFFER_UPDATE_REQUEST: 10, KEY_EVENT: 8, POINTER_EVENT: 6,
          CLIENT_CUT_TEXT: 8, SET_DESKTOP_SIZE: 8}
_DROPPED = {KEY_EVENT: "key", POINTER_EVENT: "pointer", CLIENT_CUT_TEXT: "clipboard", SET_DESKTOP_SIZE: "resize",
            QEMU: "key"}
