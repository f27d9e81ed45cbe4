"""Decoding a portrait: bytes, a path or an array -> uint8 RGB or RGBA, with its size checked before decoding.

Pillow reads the header (width, height, mode) without decoding the pixels, so an image of more than
`MAX_PORTRAIT_PIXELS` is refused before a byte of it is decompressed (a 1 MB PNG can declare 20000x20000). EXIF
orientation is applied (phone photos). An alpha channel is kept only where it is used (some pixel < 255).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from sdk.portrait.errors import PortraitError
from sdk.protocol.constants import MAX_PORTRAIT_BYTES, MAX_PORTRAIT_PIXELS

Source = bytes | bytearray | memoryview | str | Path | np.ndarray


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise PortraitError(f"the portrait has no pixels ({width}x{height})")
    if width * height > MAX_PORTRAIT_PIXELS:
        raise PortraitError(f"the portrait has too many pixels: {width}x{height} ({width * height / 1e6:.0f} MP); "
                            f"at most {MAX_PORTRAIT_PIXELS / 1e6:.0f} MP are accepted: scale it down first", "too_large")


def _from_array(img: np.ndarray) -> np.ndarray:
    if img.dtype != np.uint8:
        raise PortraitError(f"a portrait array must be uint8, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise PortraitError(f"a portrait array must be [H,W,3] RGB or [H,W,4] RGBA, got shape {img.shape}")
    _check_pixels(img.shape[1], img.shape[0])
    return _drop_unused_alpha(np.ascontiguousarray(img))


def _drop_unused_alpha(img: np.ndarray) -> np.ndarray:
    if img.shape[2] == 4 and int(img[:, :, 3].min()) == 255:
        return np.ascontiguousarray(img[:, :, :3])
    return img


def read_bytes(data: Source) -> bytes:
    """The file bytes of a portrait given as bytes or a path (PortraitError: missing, empty, too large)."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise PortraitError(f"portrait file not found: {path}")
        if path.stat().st_size > MAX_PORTRAIT_BYTES:
            raise PortraitError(f"the portrait file is larger than {MAX_PORTRAIT_BYTES >> 20} MiB", "too_large")
        data = path.read_bytes()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PortraitError(f"a portrait must be image bytes, a path or an array, not {type(data).__name__}")
    if len(data) == 0:
        raise PortraitError("the portrait is empty (0 bytes)")
    if len(data) > MAX_PORTRAIT_BYTES:
        raise PortraitError(f"the portrait is larger than {MAX_PORTRAIT_BYTES >> 20} MiB", "too_large")
    return bytes(data)


def decode_image(data: Source) -> np.ndarray:
    """uint8 [H,W,3] RGB, or [H,W,4] RGBA where the image has a used alpha channel (PortraitError otherwise)."""
    if isinstance(data, np.ndarray):
        return _from_array(data)
    raw = read_bytes(data)
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as im:
            _check_pixels(*im.size)                      # the header only: nothing is decoded yet
            im = ImageOps.exif_transpose(im)
            alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            rgb = np.asarray(im.convert("RGBA" if alpha else "RGB"))
    except PortraitError:
        raise
    except Image.DecompressionBombError as exc:     # Pillow's own guard, met before ours for the very largest
        raise PortraitError(f"the portrait has too many pixels ({exc}); at most {MAX_PORTRAIT_PIXELS / 1e6:.0f} MP "
                            "are accepted: scale it down first", "too_large") from None
    except UnidentifiedImageError:
        raise PortraitError(f"the portrait is not a readable image ({len(raw)} bytes; PNG, JPEG, WebP or BMP "
                            "expected)", "not_an_image") from None
    except (OSError, ValueError) as exc:
        raise PortraitError(f"the portrait is not a readable image ({len(raw)} bytes; PNG, JPEG, WebP or BMP "
                            f"expected): {exc}", "not_an_image") from None
    return _drop_unused_alpha(np.ascontiguousarray(rgb))
