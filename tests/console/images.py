"""Just enough PNG decoding (8-bit RGB/RGBA/grey, not interlaced: what QEMU and Chromium write) and image
comparison for the console tests, with zlib + numpy (no imaging library in the dependencies)."""
from __future__ import annotations

import struct
import zlib

import numpy as np

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def decode_png(data: bytes) -> np.ndarray:
    """An (h, w, 3) uint8 RGB array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _comp, _filter, interlace = header
    assert depth == 8 and interlace == 0 and colour in _CHANNELS, header
    bpp = _CHANNELS[colour]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(width * bpp, dtype=np.int32)
        if kind == 0:
            out[y] = line
        elif kind == 2:
            out[y] = (line + prev) & 0xFF
        else:  # 1 sub, 3 average, 4 Paeth depend on the left neighbour: decode bytewise
            row = np.zeros(width * bpp, dtype=np.int32)
            for x in range(width * bpp):
                left = row[x - bpp] if x >= bpp else 0
                up = prev[x]
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    upleft = prev[x - bpp] if x >= bpp else 0
                    p = left + up - upleft
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else upleft)
                row[x] = (line[x] + pred) & 0xFF
            out[y] = row
    pixels = out.reshape(height, width, bpp).astype(np.uint8)
    if bpp in (1, 2):
        return np.repeat(pixels[:, :, :1], 3, axis=2)
    return pixels[:, :, :3]


def downscale(img: np.ndarray, size: tuple[int, int] = (20, 32)) -> np.ndarray:
    """Block means on a (rows, cols) grid: compares images of different sizes (scaled canvas vs framebuffer)."""
    rows, cols = size
    h, w = img.shape[:2]
    ys = np.linspace(0, h, rows + 1).astype(int)
    xs = np.linspace(0, w, cols + 1).astype(int)
    grid = np.zeros((rows, cols, 3))
    for r in range(rows):
        for c in range(cols):
            grid[r, c] = img[ys[r]:ys[r + 1], xs[c]:xs[c + 1]].reshape(-1, 3).mean(axis=0)
    return grid


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0-255) of two images on a common coarse grid."""
    return float(np.abs(downscale(a) - downscale(b)).mean())


def histogram(img: np.ndarray, bins: int = 4) -> np.ndarray:
    """Share of pixels in each of bins³ colour cubes."""
    q = (img.astype(int) * bins // 256).reshape(-1, 3)
    idx = q[:, 0] * bins * bins + q[:, 1] * bins + q[:, 2]
    return np.bincount(idx, minlength=bins**3) / len(idx)


def is_flat(img: np.ndarray) -> bool:
    return float(img.reshape(-1, 3).std(axis=0).max()) < 8.0
