"""The view-only filter alone, on byte streams: what passes, what is dropped, what closes the connection, however
the client's bytes are cut into websocket frames."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvmweb.console.rfb import RfbViolation, ViewOnlyFilter

VERSION = b"RFB 003.008\n"
HANDSHAKE_IN = VERSION + b"\x01" + b"\x00"  # security None, ClientInit asking for exclusive access
HANDSHAKE_OUT = VERSION + b"\x01" + b"\x01"  # ...forwarded as shared

PIXEL_FORMAT = struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
ENCODINGS = struct.pack(">BxH", 2, 3) + struct.pack(">iii", 0, -223, -258)
UPDATE_REQUEST = struct.pack(">BBHHHH", 3, 1, 0, 0, 640, 480)
AUDIO_ENABLE = struct.pack(">BBH", 255, 1, 0)
AUDIO_FORMAT = struct.pack(">BBHBBI", 255, 1, 2, 3, 2, 44100)
KEY = struct.pack(">BBxxI", 4, 1, 0x61)
POINTER = struct.pack(">BBHH", 5, 1, 100, 200)
CUT_TEXT = struct.pack(">Bxxxi", 6, 11) + b"rm -rf /\n\n\n"[:11]
EXT_KEY = struct.pack(">BBHII", 255, 0, 1, 0x61, 0x1e)
DESKTOP_SIZE = struct.pack(">BxHHBx", 251, 1024, 768, 2) + b"\x00" * 32

ALLOWED = [PIXEL_FORMAT, ENCODINGS, UPDATE_REQUEST, AUDIO_ENABLE, AUDIO_FORMAT]
DROPPED = [KEY, POINTER, CUT_TEXT, EXT_KEY, DESKTOP_SIZE]


def run(chunks: list[bytes]) -> tuple[bytes, ViewOnlyFilter]:
    filt = ViewOnlyFilter()
    return b"".join(filt.feed(c) for c in chunks), filt


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` in pieces of the given sizes (cycled), as websocket frames might carry it."""
    pieces, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)] if sizes else len(data)
        pieces.append(data[i:i + n])
        i += n
        k += 1
    return pieces


def test_handshake_passes_and_client_init_is_forced_shared() -> None:
    out, _ = run([HANDSHAKE_IN])
    assert out == HANDSHAKE_OUT


def test_vnc_authentication_response_passes() -> None:
    response = bytes(range(16))
    out, _ = run([VERSION + b"\x02" + response + b"\x00" + UPDATE_REQUEST])
    assert out == VERSION + b"\x02" + response + b"\x01" + UPDATE_REQUEST


def test_allowed_messages_pass_and_input_is_dropped_and_counted() -> None:
    stream = HANDSHAKE_IN + b"".join(m for pair in zip(ALLOWED, DROPPED, strict=True) for m in pair)
    out, filt = run([stream])
    assert out == HANDSHAKE_OUT + b"".join(ALLOWED)
    assert filt.dropped == {"key": 2, "pointer": 1, "clipboard": 1, "resize": 1}
    assert filt.summary() == "dropped 1 clipboard, 2 key, 1 pointer, 1 resize events"


@settings(max_examples=200, deadline=None)
@given(order=st.lists(st.sampled_from(ALLOWED + DROPPED), max_size=30),
       sizes=st.lists(st.integers(min_value=1, max_value=25), max_size=8))
def test_any_framing_gives_the_same_result(order: list[bytes], sizes: list[int]) -> None:
    """Messages split across frames, several in one frame, one byte at a time: the same bytes reach the server."""
    stream = HANDSHAKE_IN + b"".join(order)
    expected = HANDSHAKE_OUT + b"".join(m for m in order if m in ALLOWED)
    out, filt = run(cut(stream, sizes))
    assert out == expected
    assert sum(filt.dropped.values()) == sum(1 for m in order if m in DROPPED)


def test_byte_by_byte() -> None:
    stream = HANDSHAKE_IN + b"".join(ALLOWED + DROPPED + ALLOWED)
    out, _ = run([bytes([b]) for b in stream])
    assert out == HANDSHAKE_OUT + b"".join(ALLOWED + ALLOWED)


def test_oversized_cut_text_is_skipped_in_constant_memory() -> None:
    """A ClientCutText announcing 2 GiB: its body is discarded as it streams by, nothing is buffered."""
    filt = ViewOnlyFilter()
    assert filt.feed(HANDSHAKE_IN + struct.pack(">Bxxxi", 6, 0x7FFFFFFF)) == HANDSHAKE_OUT
    chunk = b"A" * (1 << 20)
    for _ in range(64):  # 64 MiB of it
        assert filt.feed(chunk) == b""
        assert len(filt._head) <= 20
    # The extended clipboard format announces its length negated: the same rule.
    filt = ViewOnlyFilter()
    filt.feed(HANDSHAKE_IN + struct.pack(">Bxxxi", 6, -(1 << 31)))
    assert filt.feed(UPDATE_REQUEST) == b"" and filt._skip == (1 << 31) - len(UPDATE_REQUEST)
    # A small one ends where its length says: the next message passes.
    out, _ = run([HANDSHAKE_IN + struct.pack(">Bxxxi", 6, 5) + b"hello" + UPDATE_REQUEST])
    assert out == HANDSHAKE_OUT + UPDATE_REQUEST


def test_long_set_encodings_streams_through() -> None:
    encodings = struct.pack(">BxH", 2, 65535) + b"\x00\x00\x00\x07" * 65535
    out, filt = run(cut(HANDSHAKE_IN + encodings + UPDATE_REQUEST, [4096]))
    assert out == HANDSHAKE_OUT + encodings + UPDATE_REQUEST
    assert len(filt._head) == 0


@pytest.mark.parametrize("stream,reason", [
    (b"RFB 003.003\n", "RFB 3.7 or 3.8"),
    (b"GET / HTTP/1.1\r\n", "RFB 3.7 or 3.8"),
    (VERSION + b"\x13", "security type 19"),  # VeNCrypt: its sub-negotiation cannot be followed
    (HANDSHAKE_IN + b"\x07", "message type 7"),
    (HANDSHAKE_IN + struct.pack(">BxBB", 250, 1, 4), "message type 250"),  # xvp: shut down / reboot / reset
    (HANDSHAKE_IN + b"\x01", "message type 1"),
    (HANDSHAKE_IN + b"\xff\x07", "QEMU message 7"),
    (HANDSHAKE_IN + struct.pack(">BBH", 255, 1, 9), "audio operation 9"),
])
def test_unknown_closes_and_passes_nothing(stream: bytes, reason: str) -> None:
    filt = ViewOnlyFilter()
    passed = b""
    with pytest.raises(RfbViolation, match=reason):
        for b in stream:  # whatever passed before the violation is whole, earlier messages
            passed += filt.feed(bytes([b]))
    assert HANDSHAKE_OUT.startswith(passed)  # only whole handshake steps went through before it


def test_a_violation_forwards_nothing_of_its_frame() -> None:
    """The proxy forwards a frame's bytes only when the whole frame passed the filter."""
    filt = ViewOnlyFilter()
    filt.feed(HANDSHAKE_IN)
    with pytest.raises(RfbViolation):
        filt.feed(UPDATE_REQUEST + b"\x09" + b"\x00" * 50)
