"""Five clicks that place a face the detector cannot find: the eye centres, the nose tip, the mouth corners.

`FacePointsDialog(image)` shows the picture (scaled to fit `VIEW_PX`), asks for each point in turn and marks it;
**Undo** takes the last one back, **OK** is enabled once all five are placed. `points()` are in the picture's own
pixels (what `sdk.portrait.load_portrait(..., face_points=...)` and the session's `open` take), whatever the
scale it is shown at. Left and right are as seen in the picture.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from ..portrait_check import POINT_NAMES
from ..qt_util import rgb_to_qimage

VIEW_PX = 480
COLORS = ("#1e88e5", "#1e88e5", "#43a047", "#e53935", "#e53935")


class FacePointsView(QWidget):
    """The picture at a fixed scale; a left click places the next point (`pointsChanged` fires)."""

    pointsChanged = Signal()

    def __init__(self, image: np.ndarray, view_px: int = VIEW_PX, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        h, w = image.shape[:2]
        self.source_size = (w, h)
        self.scale = min(view_px / w, view_px / h)
        self.pixmap = QPixmap.fromImage(rgb_to_qimage(image)).scaled(
            max(1, round(w * self.scale)), max(1, round(h * self.scale)), Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        self.setFixedSize(self.pixmap.size())
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.points: list[list[float]] = []

    def to_source(self, x: float, y: float) -> list[float]:
        """Widget coordinates -> picture pixels."""
        w, h = self.source_size
        return [min(max(x / self.scale, 0.0), w - 1.0), min(max(y / self.scale, 0.0), h - 1.0)]

    def to_view(self, point: list[float]) -> QPointF:
        """Picture pixels -> widget coordinates."""
        return QPointF(point[0] * self.scale, point[1] * self.scale)

    def add(self, x_src: float, y_src: float) -> bool:
        """Place the next point at picture pixel (x, y); False when all five are placed."""
        if len(self.points) >= len(POINT_NAMES):
            return False
        self.points.append(self.to_source(x_src * self.scale, y_src * self.scale))
        self.update()
        self.pointsChanged.emit()
        return True

    def undo(self) -> None:
        if self.points:
            self.points.pop()
            self.update()
            self.pointsChanged.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt name)
        if event.button() == Qt.MouseButton.LeftButton:
            pos = event.position()
            x, y = self.to_source(pos.x(), pos.y())
            self.add(x, y)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self.pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for i, p in enumerate(self.points):
            c = self.to_view(p)
            painter.setPen(QPen(QColor("white"), 4))
            painter.drawEllipse(c, 6, 6)
            painter.setPen(QPen(QColor(COLORS[i]), 2))
            painter.drawEllipse(c, 6, 6)
            painter.drawText(c + QPointF(8, -8), str(i + 1))
        painter.end()


class FacePointsDialog(QDialog):
    """Asks for the five points on `image` (uint8 [H, W, 3|4]); `points()` after `accept`."""

    def __init__(self, image: np.ndarray, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Place the face points")
        self.view = FacePointsView(image, parent=self)
        self.prompt = QLabel()
        self.prompt.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.view.undo)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.addButton(self.undo_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("No face was found in this picture. Show the avatar where it is: click five points, "
                             "left and right as you see them."))
        lay.addWidget(self.view, 0, Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(self.prompt)
        lay.addWidget(self.buttons)
        self.view.pointsChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        n = len(self.view.points)
        done = n >= len(POINT_NAMES)
        self.prompt.setText("All five points placed: press OK." if done
                            else f"Click {POINT_NAMES[n]} ({n + 1} of {len(POINT_NAMES)}).")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(done)
        self.undo_button.setEnabled(n > 0)

    def points(self) -> list[list[float]] | None:
        """The five points (picture pixels), or None until all are placed."""
        return [list(p) for p in self.view.points] if len(self.view.points) == len(POINT_NAMES) else None
