"""Identity portrait chooser: open or drop an image, see the frame the engine will use (sdk.portrait: the same
decode, face finding and crop, landmarks drawn on it) or the reason it is refused, or pick a built-in gallery
character instead. Where no face is found, **Place face points…** asks for five clicks (eyes, nose tip, mouth
corners; widgets/face_points.py) and the picture is used with them: the points are stored with the persona
and sent with the session's `open`.

An opened, dropped or stored image is checked on a short-lived thread (decoding and face finding of a large
photo take a second or more): the thread only emits a signal, and the GUI thread shows the result unless
another identity was chosen meanwhile. `load_file` checks on the calling thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QPointF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from ..gallery import EMPTY_HINT, GalleryCharacter, find_character, load_gallery
from ..portrait_check import PortraitCheck, PortraitRejected, check_portrait, source_image
from ..qt_util import rgb_to_pixmap
from .face_points import FacePointsDialog

PREVIEW_PX = 160
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp)"
CHECK_THREAD = "xstreamer-studio-portrait"


def _check(path: str, face_points: list | None = None) -> PortraitCheck | PortraitRejected:
    """`check_portrait`, with the refusal returned instead of raised (any failure is a refusal)."""
    try:
        return check_portrait(Path(path), face_points)
    except PortraitRejected as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - an OpenCV failure is shown as a refusal, never raised into Qt
        return PortraitRejected("unreadable",
                                f"The image could not be checked ({type(exc).__name__}: {exc}).")


class _CheckRelay(QObject):
    """Carries a background check's result to the GUI thread: `done(generation, path, result)`. It has no
    parent, so a thread still running after the chooser is gone emits on a live object."""

    done = Signal(int, str, object)


def _check_in_thread(relay: _CheckRelay, generation: int, path: str, face_points: list | None) -> None:
    """Thread body: check the image, then emit one signal (no widget is touched here)."""
    relay.done.emit(generation, path, _check(path, face_points))


def framed_pixmap(result: PortraitCheck, side: int) -> QPixmap:
    """The engine's frame at `side` px with its 68 landmarks drawn as dots (what the avatar is made of)."""
    pix = rgb_to_pixmap(result.crop).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.SmoothTransformation)
    k = pix.width() / result.crop.shape[1]
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 230, 118, 200))
    for x, y in result.landmarks:
        painter.drawEllipse(QPointF(float(x) * k, float(y) * k), 1.3, 1.3)
    painter.end()
    return pix


class PortraitChooser(QWidget):
    """Shows the crop the model will use. `portraitChanged(path)` ("" = none) fires for an accepted image;
    `characterChanged(id)` ("" = none) for a gallery pick. A refused image changes nothing but the message.
    `checked(accepted)` fires when a background check (`open_file`, a drop, `set_identity`) has been shown.
    `face_points` are the five points the current portrait was placed with (None: its face was found)."""

    portraitChanged = Signal(str)
    characterChanged = Signal(str)
    checked = Signal(bool)

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
        self.points_button = QPushButton("Place face points…")
        self.points_button.setToolTip("No face found: click the eyes, the nose tip and the mouth corners")
        self.points_button.clicked.connect(self.place_points_dialog)
        self.points_button.setVisible(False)
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
        buttons.addWidget(self.points_button)
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
        self.face_points: list[list[float]] | None = None
        self.points_for: str | None = None        # a picture with no face found: the points dialog's subject
        self.last_check: PortraitCheck | None = None
        self.character: str | None = None
        self.last_reason: str | None = None      # code of the last refusal (PortraitRejected.reason)
        self.last_error = ""                      # its sentence
        self.characters: list[GalleryCharacter] = []
        self._generation = 0                      # bumped by every identity change: stale checks are dropped
        self._pending: tuple[int, bool] | None = None   # (generation, stored?) of the check in flight
        self._relay = _CheckRelay()
        self._relay.done.connect(self._checked_in_background)
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
        self._generation += 1
        self.portrait_path, self.character, self.last_reason = None, c.id, None
        self.face_points = None
        self._offer_points(None)
        self._select_in_gallery(c.id)
        self.preview.setPixmap(QPixmap(str(c.image)).scaled(PREVIEW_PX, PREVIEW_PX,
                                                            Qt.AspectRatioMode.KeepAspectRatio,
                                                            Qt.TransformationMode.SmoothTransformation))
        self._show_ok(f"Built-in character “{c.name}”.")
        self.characterChanged.emit(c.id)
        self.portraitChanged.emit("")
        return True

    def _select_in_gallery(self, char_id: str | None) -> None:
        """Highlight (and scroll to) the gallery item of `char_id`; None clears the highlight."""
        self.gallery.clearSelection()
        for i in range(self.gallery.count()):
            item = self.gallery.item(i)
            if char_id is not None and item.data(Qt.ItemDataRole.UserRole) == char_id:
                self.gallery.setCurrentItem(item)
                self.gallery.scrollToItem(item)
                return
        self.gallery.setCurrentRow(-1)

    # -- portrait files -----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        """Ask for an image file and check it in the background."""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a portrait", str(Path.home()), IMAGE_FILTER)
        if path:
            self.open_file(path)

    @property
    def checking(self) -> bool:
        """A background check is running and its result will be shown."""
        return self._pending is not None and self._pending[0] == self._generation

    def open_file(self, path: str | Path, face_points: list | None = None) -> None:
        """Check `path` (placed by five `face_points` when given) off the GUI thread; returns at once. The
        result is shown (as by `load_file`) and `checked` emitted when the check ends, unless another identity
        was chosen meanwhile."""
        self._generation += 1
        self._start_check(str(path), stored=False, face_points=face_points)

    def _start_check(self, path: str, stored: bool, face_points: list | None = None) -> None:
        self._pending = (self._generation, stored)
        self.message.setText(f"Looking for a face in {Path(path).name}…" if face_points is None
                             else f"Placing the face in {Path(path).name} from your five points…")
        self.message.setStyleSheet("color: #555; font-style: italic;")
        threading.Thread(target=_check_in_thread, args=(self._relay, self._generation, path, face_points),
                         name=CHECK_THREAD, daemon=True).start()

    def place_points_dialog(self) -> bool:
        """Ask for five face points on the picture whose face was not found, then check it with them (in the
        background). False when there is no such picture or the dialog was cancelled."""
        path = self.points_for
        if path is None:
            return False
        try:
            image = source_image(path)
        except PortraitRejected as exc:
            self._show_error(str(exc), exc.reason)
            return False
        dialog = FacePointsDialog(image, self)
        if dialog.exec() != FacePointsDialog.DialogCode.Accepted or dialog.points() is None:
            return False
        self.open_file(path, dialog.points())
        return True

    def _offer_points(self, path: str | None) -> None:
        """Show (for a picture with no face found) or hide the **Place face points…** button."""
        self.points_for = path
        self.points_button.setVisible(path is not None)

    def _checked_in_background(self, generation: int, path: str,
                               result: PortraitCheck | PortraitRejected) -> None:
        if self._pending is None or generation != self._generation:
            return                                # superseded by another image, a character, Clear…
        stored, self._pending = self._pending[1], None
        self.checked.emit(self._show_stored(path, result) if stored else self._show_check(path, result))

    def load_file(self, path: str | Path, face_points: list | None = None) -> bool:
        """Check `path` now (on this thread); on success show the crop and emit `portraitChanged`, else show
        the reason. Returns whether the image was accepted."""
        self._generation += 1
        self._pending = None
        return self._show_check(str(path), _check(str(path), face_points))

    def _show_check(self, path: str, result: PortraitCheck | PortraitRejected) -> bool:
        """Show a new image's check: an accepted image becomes the identity (signals emitted)."""
        if isinstance(result, PortraitRejected):
            self._show_error(str(result), result.reason)
            if result.reason in ("no_face", "bad_points"):
                self._offer_points(path)
            return False
        self._offer_points(None)
        self.face_points = result.face_points
        self.portrait_path, self.character, self.last_reason = str(Path(path).resolve()), None, None
        self._select_in_gallery(None)
        self._show_crop(result)
        self.portraitChanged.emit(self.portrait_path)
        self.characterChanged.emit("")
        return True

    def _show_stored(self, path: str, result: PortraitCheck | PortraitRejected) -> bool:
        """Show a stored portrait's check: it stays the identity either way (no signals)."""
        if isinstance(result, PortraitRejected):
            self._show_error(f"The saved portrait {path} cannot be used: {result} It is kept until you open "
                             "another image, pick a character or press Clear.", result.reason)
            return False
        self._show_crop(result)
        return True

    def _show_crop(self, result: PortraitCheck) -> None:
        self.last_check = result
        self.preview.setPixmap(framed_pixmap(result, PREVIEW_PX))
        w, h = result.image_size
        how = "Face placed by your five points" if result.found_by == "face_points" else "Face found"
        self._show_ok(f"{how} ({result.face[2]} px in a {w}×{h} image). This frame is what the avatar is made "
                      "of; the dots are the landmarks it moves.")

    def set_identity(self, portrait: str | None, character: str | None,
                     face_points: list | None = None) -> None:
        """Show a stored persona's identity without emitting change signals; a portrait is checked in the
        background (`checked` fires when its crop or its problem is shown).

        A stored portrait that cannot be used any more (deleted, unreadable) or a character missing from the
        gallery stays the identity, so saving keeps it, until the user clears it or picks another one; the
        message says what is wrong."""
        self.blockSignals(True)
        try:
            self.clear()
            if portrait:
                self.portrait_path = portrait
                self.face_points = [list(p) for p in face_points] if face_points else None
                self._start_check(portrait, stored=True, face_points=self.face_points)
            elif character and not self.choose_character(character):
                self.character = character
                self._show_error(f"The saved character {character!r} is not in the gallery. It is kept until "
                                 "you choose another identity or press Clear.", "unknown_character")
        finally:
            self.blockSignals(False)

    def clear(self) -> None:
        """No identity: the daemon uses its default character (emits the change signals if one was set)."""
        had = self.portrait_path or self.character
        self._generation += 1
        self.portrait_path = self.character = self.last_reason = None
        self.face_points = self.last_check = None
        self._offer_points(None)
        self.last_error = ""
        self._select_in_gallery(None)
        self.preview.clear()
        self.preview.setText("Drop a portrait here\nor click “Open image…”")
        self.message.setText("No identity chosen: the daemon uses its default character.")
        self.message.setStyleSheet("color: #555;")
        if had:
            self.portraitChanged.emit("")
            self.characterChanged.emit("")

    def _show_error(self, text: str, reason: str | None) -> None:
        self.last_reason, self.last_error = reason, text
        self.message.setText(f"✗ {text}")
        self.message.setStyleSheet("color: #b00020; font-weight: bold;")

    def _show_ok(self, text: str) -> None:
        self.last_error = ""
        self.message.setText(f"✓ {text}")
        self.message.setStyleSheet("color: #1b5e20;")

    # -- drag and drop ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt name)
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt name)
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_file(urls[0].toLocalFile())
            event.acceptProposedAction()
