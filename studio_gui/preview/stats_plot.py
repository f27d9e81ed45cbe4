"""A small live plot (QPainter, no dependency) of fps, latency and A/V offset over the last minute."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QWidget

# name -> (colour, unit, fixed (lo, hi) range or None for auto)
SERIES = {
    "fps": (QColor(60, 170, 90), "fps", (0.0, 30.0)),
    "latency": (QColor(70, 130, 220), "ms", None),
    "av_offset": (QColor(220, 120, 40), "ms", None),
}
LABELS = {"fps": "", "latency": "latency ", "av_offset": "A/V "}


class StatsPlot(QWidget):
    """Call `add(fps=..., latency=..., av_offset=...)` about once a second (missing values repeat the last)."""

    def __init__(self, points: int = 60, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 90)
        self.data: dict[str, deque[float]] = {k: deque(maxlen=points) for k in SERIES}
        self.last: dict[str, float] = {k: 0.0 for k in SERIES}

    def add(self, **values: float | None) -> None:
        """Append one sample per series; unknown names raise KeyError."""
        for k in values:
            if k not in SERIES:
                raise KeyError(f"unknown series {k!r}; known: {sorted(SERIES)}")
        for k in SERIES:
            v = values.get(k)
            if v is not None:
                self.last[k] = float(v)
            self.data[k].append(self.last[k])
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(250, 250, 252))
        p.setPen(QColor(210, 210, 215))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        w, h = self.width(), self.height() - 16
        x_text = 6
        for name, (colour, unit, fixed) in SERIES.items():
            vals = list(self.data[name])
            p.setPen(colour)
            label = f"{LABELS[name]}{self.last[name]:.0f} {unit}"
            p.drawText(x_text, h + 13, label)
            x_text += p.fontMetrics().horizontalAdvance(label) + 12
            if len(vals) < 2:
                continue
            lo, hi = fixed if fixed else (min(min(vals), 0.0), max(max(vals), 1.0))
            span = (hi - lo) or 1.0
            step = w / (self.data[name].maxlen - 1)
            x0 = w - step * (len(vals) - 1)
            poly = QPolygonF([QPointF(x0 + j * step, 4 + (h - 8) * (1 - (v - lo) / span))
                              for j, v in enumerate(vals)])
            p.setPen(QPen(colour, 1.6))
            p.drawPolyline(poly)
        p.setPen(Qt.PenStyle.NoPen)
