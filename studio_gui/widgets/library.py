"""The persona library column: the list of stored personas and its buttons (the window wires them)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget


class PersonaLibrary(QWidget):
    """A list of persona names; `selected(name)` fires when the user picks one."""

    selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("personaList")
        self.new_button = QPushButton("New")
        self.duplicate_button = QPushButton("Duplicate")
        self.delete_button = QPushButton("Delete")
        self.import_button = QPushButton("Import…")
        self.export_button = QPushButton("Export…")
        grid = QGridLayout()
        for i, b in enumerate((self.new_button, self.duplicate_button, self.delete_button,
                               self.import_button, self.export_button)):
            grid.addWidget(b, i // 2, i % 2)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<b>Personas</b>"))
        lay.addWidget(self.list, 1)
        lay.addLayout(grid)
        self.list.currentTextChanged.connect(self._changed)
        self._quiet = False

    def _changed(self, name: str) -> None:
        if name and not self._quiet:
            self.selected.emit(name)

    def set_names(self, names: list[str], current: str | None = None) -> None:
        """Replace the list (without emitting) and select `current` if present."""
        self._quiet = True
        try:
            self.list.clear()
            self.list.addItems(names)
            if current in names:
                self.list.setCurrentRow(names.index(current))
        finally:
            self._quiet = False
        has = bool(names)
        for b in (self.duplicate_button, self.delete_button, self.export_button):
            b.setEnabled(has)

    def set_current(self, name: str | None) -> None:
        """Select `name` in the list without emitting `selected`."""
        names = self.names()
        self._quiet = True
        try:
            self.list.setCurrentRow(names.index(name) if name in names else -1)
        finally:
            self._quiet = False

    def names(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def current(self) -> str | None:
        item = self.list.currentItem()
        return item.text() if item else None
