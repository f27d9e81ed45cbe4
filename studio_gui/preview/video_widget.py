"""A widget that paints the newest RGB24 video frame (scaled to fit, aspect kept) on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..qt_util import rgb_to_qimage


class VideoWidget(QWidget):
    """Shows the last frame given to `set_frame`; `frames_shown` counts them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: QImage | None = None
        self.frames_shown = 0
        self.placeholder = "No video"

    def set_frame(self, rgb24: bytes, width: int, height: int) -> None:
        """Display one RGB24 frame (rows top to bottom)."""
        self.image = rgb_to_qimage(rgb24, width, height)
        self.frames_shown += 1
        self.update()

    def clear(self, placeholder: str = "No video") -> None:
        self.image = None
        self.placeholder = placeholder
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        if self.image is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        side = min(self.width(), self.height())
        target = QRect((self.width() - side) // 2, (self.height() - side) // 2, side, side)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(target, self.image)
