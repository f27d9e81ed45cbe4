"""Identity portrait chooser: open or drop an image, see the face crop or the reason it is refused,
or pick a built-in gallery character instead."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QPixmap
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from ..gallery import EMPTY_HINT, GalleryCharacter, find_character, load_gallery
from ..portrait_check import PortraitRejected, check_portrait
from ..qt_util import rgb_to_pixmap

PREVIEW_PX = 160
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp)"


class PortraitChooser(QWidget):
    """Shows the crop the model will use. `portraitChanged(path)` ("" = none) fires for an accepted image;
    `characterChanged(id)` ("" = none) for a gallery pick. A refused image changes nothing but the message."""

    portraitChanged = Signal(str)
    characterChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.preview = QLabel("Drop a portrait here\nor click “Open image…”")
        self.preview.setObjectName("portraitPreview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedSize(PREVIEW_PX, PREVIEW_PX)
        self.preview.setStyleSheet("QLabel#portraitPreview {border: 2px dashed #888; color: #666;}")
        self.message = QLabel("")
        self.message.setObjectName("portraitMessage")
        self.message.setWordWrap(True)
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self.open_dialog)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(56, 56))
        self.gallery.setMaximumHeight(96)
        self.gallery.setFlow(QListWidget.Flow.LeftToRight)
        self.gallery.setWrapping(False)
        self.gallery.itemClicked.connect(self._gallery_clicked)
        self.gallery_hint = QLabel("")
        self.gallery_hint.setWordWrap(True)
        self.gallery_hint.setStyleSheet("color: #777;")

        buttons = QVBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.message, 1)
        top = QHBoxLayout()
        top.addWidget(self.preview)
        top.addLayout(buttons, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(QLabel("Built-in characters"))
        lay.addWidget(self.gallery)
        lay.addWidget(self.gallery_hint)
        self.portrait_path: str | None = None
        self.character: str | None = None
        self.last_reason: str | None = None
        self.characters: list[GalleryCharacter] = []
        self.reload_gallery()

    # -- gallery ------------------------------------------------------------------------------------
    def reload_gallery(self) -> None:
        """(Re)read the gallery folder; shows a hint when it is empty."""
        self.characters = load_gallery()
        self.gallery.clear()
        for c in self.characters:
            item = QListWidgetItem(QIcon(str(c.image)), c.name)
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            self.gallery.addItem(item)
        self.gallery.setVisible(bool(self.characters))
        self.gallery_hint.setText("" if self.characters else EMPTY_HINT)
        self.gallery_hint.setVisible(not self.characters)

    def _gallery_clicked(self, item: QListWidgetItem) -> None:
        self.choose_character(str(item.data(Qt.ItemDataRole.UserRole)))

    def choose_character(self, char_id: str) -> bool:
        """Use gallery character `char_id` as the identity (clears the portrait file)."""
        c = find_character(char_id, self.characters)
        if c is None:
            self._show_error(f"No built-in character {char_id!r}.", "unknown_character")
            return False
        self.portrait_path, self.character, self.last_reason = None, c.id, None
        self.preview.setPixmap(QPixmap(str(c.image)).scaled(PREVIEW_PX, PREVIEW_PX,
                                                            Qt.AspectRatioMode.KeepAspectRatio,
                                                            Qt.TransformationMode.SmoothTransformation))
        self._show_ok(f"Built-in character “{c.name}”.")
        self.characterChanged.emit(c.id)
        self.portraitChanged.emit("")
        return True

    # -- portrait files -----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a portrait", str(Path.home()), IMAGE_FILTER)
        if path:
            self.load_file(path)

    def load_file(self, path: str | Path) -> bool:
        """Check `path`; on success show the crop and emit `portraitChanged`, else show the reason."""
        try:
            result = check_portrait(Path(path))
        except PortraitRejected as exc:
            self._show_error(str(exc), exc.reason)
            return False
        self.portrait_path, self.character, self.last_reason = str(Path(path).resolve()), None, None
        self.preview.setPixmap(rgb_to_pixmap(result.crop).scaled(
            PREVIEW_PX, PREVIEW_PX, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        w, h = result.image_size
        self._show_ok(f"Face found ({result.face[2]} px in a {w}×{h} image). This crop is what the model sees.")
        self.portraitChanged.emit(self.portrait_path)
        self.characterChanged.emit("")
        return True

    def set_identity(self, portrait: str | None, character: str | None) -> None:
        """Show a stored persona's identity without emitting change signals."""
        self.blockSignals(True)
        try:
            self.clear()
            if portrait:
                self.load_file(portrait)
            elif character:
                self.choose_character(character)
        finally:
            self.blockSignals(False)

    def clear(self) -> None:
        had = self.portrait_path or self.character
        self.portrait_path = self.character = self.last_reason = None
        self.preview.clear()
        self.preview.setText("Drop a portrait here\nor click “Open image…”")
        self.message.setText("No identity chosen: the daemon uses its default character.")
        self.message.setStyleSheet("color: #555;")
        if had:
            self.portraitChanged.emit("")
            self.characterChanged.emit("")

    def _show_error(self, text: str, reason: str) -> None:
        self.last_reason = reason
        self.message.setText(f"✗ {text}")
        self.message.setStyleSheet("color: #b00020; font-weight: bold;")

    def _show_ok(self, text: str) -> None:
        self.message.setText(f"✓ {text}")
        self.message.setStyleSheet("color: #1b5e20;")

    # -- drag and drop ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.load_file(urls[0].toLocalFile())
            event.acceptProposedAction()
