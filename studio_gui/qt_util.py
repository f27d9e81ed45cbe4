"""Small Qt helpers shared by the studio widgets (numpy RGB/RGBA -> QImage/QPixmap)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def rgb_to_qimage(rgb: np.ndarray | bytes, width: int | None = None, height: int | None = None) -> QImage:
    """H x W x 3 uint8 RGB or H x W x 4 RGBA (or raw RGB24 bytes with width/height) -> an owning QImage."""
    if isinstance(rgb, np.ndarray):
        if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 or 4 uint8, got {rgb.shape} {rgb.dtype}")
        height, width, channels = rgb.shape
        data = np.ascontiguousarray(rgb).tobytes()
        if channels == 4:
            return QImage(data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
    else:
        if width is None or height is None or len(rgb) != width * height * 3:
            raise ValueError(f"RGB24 payload of {len(rgb)} bytes does not match {width}x{height}")
        data = bytes(rgb)
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def rgb_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """H x W x 3 uint8 RGB (or x 4 RGBA) -> QPixmap."""
    return QPixmap.fromImage(rgb_to_qimage(rgb))
