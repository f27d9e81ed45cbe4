"""The width and height a PNG or JPEG file declares, read from its header without decoding any pixel.

The daemon checks a portrait's pixel count (MAX_PORTRAIT_PIXELS) with this before anything decodes it: a
1 MB PNG can declare 20000 x 20000 pixels and take gigabytes to decode.
"""

from __future__ import annotations

import struct

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, and their arithmetic-coded twins).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}     # markers without a length field (TEM, RSTn)


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """("png" | "jpeg", width, height) from the file's header, or None when it is neither (or truncated)."""
    if data[:8] == _PNG:
        # The first chunk must be IHDR: length (4), "IHDR", width (4), height (4).
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        w, h = struct.unpack(">II", data[16:24])
        return "png", int(w), int(h)
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:            # fill byte
                i += 1
                continue
            if marker in _STANDALONE:
                i += 2
                continue
            if marker in (0xD9, 0xDA):    # end of image / start of scan before any frame header
                return None
            (length,) = struct.unpack(">H", data[i + 2:i + 4])
            if length < 2:
                return None
            if marker in _SOF:
                if i + 9 > len(data):
                    return None
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", int(w), int(h)
            i += 2 + length
        return None
    return None
