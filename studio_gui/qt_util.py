"""Small Qt helpers shared by the studio widgets (numpy RGB -> QImage/QPixmap)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def rgb_to_qimage(rgb: np.ndarray | bytes, width: int | None = None, height: int | None = None) -> QImage:
    """H x W x 3 uint8 RGB (or raw RGB24 bytes with width/height) -> an owning QImage (a deep copy)."""
    if isinstance(rgb, np.ndarray):
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8, got {rgb.shape} {rgb.dtype}")
        height, width = rgb.shape[:2]
        data = np.ascontiguousarray(rgb).tobytes()
    else:
        if width is None or height is None or len(rgb) != width * height * 3:
            raise ValueError(f"RGB24 payload of {len(rgb)} bytes does not match {width}x{height}")
        data = bytes(rgb)
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def rgb_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """H x W x 3 uint8 RGB -> QPixmap."""
    return QPixmap.fromImage(rgb_to_qimage(rgb))
