"""The studio's main window and `main()` (the `xstreamer-studio` console script).

Left: the persona library. Middle: the persona form, the identity portrait chooser and the export
buttons. Right: the live preview. Personas are saved as JSON files (see `studio_gui.personas`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from sdk.protocol import Persona

from . import __version__
from .export import ExportError, export_obs, export_unity
from .personas import PersonaStore, PersonaStoreError, StoredPersona
from .preview.panel import PreviewPanel
from .qt_binding import BindingError, check_binding
from .widgets.library import PersonaLibrary
from .widgets.persona_editor import PersonaEditor
from .widgets.portrait_chooser import PortraitChooser


class MainWindow(QMainWindow):
    """The studio. `store` holds the personas; `current` is the name of the persona being edited."""

    def __init__(self, store: PersonaStore | None = None, use_audio_device: bool = True) -> None:
        super().__init__()
        self.setWindowTitle(f"xstreamer studio {__version__}")
        self.store = store or PersonaStore()
        self.current: str | None = None
        self.dirty = False
        self.last_error = ""

        self.library = PersonaLibrary()
        self.library.selected.connect(self.select)
        self.library.new_button.clicked.connect(lambda: self.new_persona())
        self.library.duplicate_button.clicked.connect(lambda: self.duplicate_current())
        self.library.delete_button.clicked.connect(lambda: self.delete_current())
        self.library.import_button.clicked.connect(lambda: self.import_persona())
        self.library.export_button.clicked.connect(lambda: self.export_persona())

        self.editor = PersonaEditor()
        self.editor.changed.connect(self._mark_dirty)
        self.portrait = PortraitChooser()
        self.portrait.portraitChanged.connect(lambda _p: self._mark_dirty())
        self.portrait.characterChanged.connect(lambda _c: self._mark_dirty())
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(lambda: self.save_current())
        self.obs_button = QPushButton("Export to OBS…")
        self.obs_button.clicked.connect(lambda: self.export_to_obs())
        self.unity_button = QPushButton("Export to Unity…")
        self.unity_button.clicked.connect(lambda: self.export_to_unity())
        self.message = QLabel("")
        self.message.setObjectName("editorMessage")
        self.message.setWordWrap(True)

        middle = QWidget()
        mid = QVBoxLayout(middle)
        mid.addWidget(QLabel("<b>Persona</b>"))
        mid.addWidget(self.editor, 1)
        mid.addWidget(QLabel("<b>Identity portrait</b>"))
        mid.addWidget(self.portrait)
        row = QHBoxLayout()
        for b in (self.save_button, self.obs_button, self.unity_button):
            row.addWidget(b)
        mid.addLayout(row)
        mid.addWidget(self.message)

        self.preview = PreviewPanel(self.session_open, use_audio_device=use_audio_device)
        self.preview.status.connect(lambda text: self.statusBar().showMessage(text))
        self.editor.model.currentTextChanged.connect(self.preview.set_preset)   # the persona's model preset

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.library)
        split.addWidget(middle)
        split.addWidget(self.preview)
        split.setSizes([200, 430, 650])
        self.setCentralWidget(split)
        self.statusBar().showMessage(f"Personas in {self.store.root}")
        self.resize(1320, 780)
        self.refresh()

    # -- library ------------------------------------------------------------------------------------
    def refresh(self, select: str | None = None) -> None:
        """Re-read the persona folder; select `select` (or keep the current one, or the first)."""
        names = self.store.names()
        want = select or self.current
        if want not in names:
            want = names[0] if names else None
        self.library.set_names(names, want)
        if want != self.current or want is None:
            self._show(want)
        self._enable_editing(bool(names))

    def _show(self, name: str | None) -> None:
        self.current = name
        self.library.set_current(name)
        persona = self.store.load(name) if name else StoredPersona()
        self.editor.set_persona(persona)
        self.portrait.set_identity(persona.portrait, persona.character, persona.face_points)
        if name:
            self.preview.set_preset(persona.model)
        self.dirty = False
        self._set_message("")
        if name:
            self.statusBar().showMessage(f"Editing {name} ({self.store.path_for(name)})")

    def _enable_editing(self, on: bool) -> None:
        for w in (self.editor, self.portrait, self.save_button, self.obs_button, self.unity_button):
            w.setEnabled(on)
        if not on:
            self._set_message("No personas yet: press “New” to create one.")

    def select(self, name: str) -> None:
        """Switch to persona `name` (the current one is saved first if edited)."""
        if name == self.current:
            return
        if self.dirty and self.current and not self.save_current():
            self.library.set_current(self.current)
            return
        self._show(name)

    def edited_persona(self) -> StoredPersona:
        """The persona as shown in the form and the portrait chooser (PersonaStoreError if invalid)."""
        return self.editor.persona(portrait=self.portrait.portrait_path, character=self.portrait.character,
                                   face_points=self.portrait.face_points if self.portrait.portrait_path else None)

    def save_current(self) -> bool:
        """Save the edited persona (renames its file when the name changed); False with a message on error."""
        if self.current is None:
            return False
        try:
            persona = self.edited_persona()
            path = self.store.save(persona, previous_name=self.current)
        except (PersonaStoreError, OSError) as exc:
            self._set_message(f"Not saved: {exc}", error=True)
            return False
        self.current, self.dirty = persona.name, False
        self.library.set_names(self.store.names(), persona.name)
        self._set_message(f"Saved {path.name}")
        self.statusBar().showMessage(f"Saved {path}")
        return True

    def new_persona(self, name: str = "New persona") -> str:
        """Create a persona (unique name from `name`), select it and return its name."""
        if self.dirty:
            self.save_current()
        persona = self.store.create(name)
        self.current = None
        self.refresh(select=persona.name)
        return persona.name

    def duplicate_current(self, new_name: str | None = None) -> str | None:
        """Copy the current persona (saved first) and select the copy; its name, or None."""
        if self.current is None:
            return None
        if self.dirty and not self.save_current():
            return None
        dup = self.store.duplicate(self.current, new_name)
        self.refresh(select=dup.name)
        return dup.name

    def delete_current(self, confirm: bool = True) -> bool:
        """Delete the current persona's file (asks first when `confirm`); True if deleted."""
        if self.current is None:
            return False
        if confirm and QMessageBox.question(self, "Delete persona", f"Delete “{self.current}”?") \
                != QMessageBox.StandardButton.Yes:
            return False
        self.store.delete(self.current)
        self.current, self.dirty = None, False
        self.refresh()
        return True

    def import_persona(self, path: str | Path | None = None) -> str | None:
        """Import a persona file or an OBS/Unity export (asks for the file when `path` is None)."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import a persona", str(Path.home()), "Persona (*.json)")
            if not path:
                return None
        try:
            persona = self.store.import_file(path)
        except PersonaStoreError as exc:
            self._set_message(f"Import failed: {exc}", error=True)
            return None
        self.refresh(select=persona.name)
        self._set_message(f"Imported {persona.name!r} from {path}")
        return persona.name

    def export_persona(self, path: str | Path | None = None) -> Path | None:
        """Write the current persona (and a copy of its portrait) to `path`; the file written, or None."""
        if self.current is None or (self.dirty and not self.save_current()):
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the persona", f"{self.current}.json",
                                                  "Persona (*.json)")
            if not path:
                return None
        try:
            out = self.store.export_file(self.current, path)
        except (PersonaStoreError, OSError) as exc:
            self._set_message(f"Export failed: {exc}", error=True)
            return None
        self._set_message(f"Exported to {out}")
        return out

    # -- exports for OBS / Unity ---------------------------------------------------------------------
    def _export_folder(self, folder: str | Path | None, title: str) -> Path | None:
        if self.current is None or (self.dirty and not self.save_current()):
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, title, str(Path.home()))
        return Path(folder) if folder else None

    def export_to_obs(self, folder: str | Path | None = None) -> Path | None:
        """Write the persona file (and its portrait) that the OBS script's "Persona (JSON)" setting takes."""
        target = self._export_folder(folder, "Export for OBS into…")
        if target is None:
            return None
        try:
            out = export_obs(self.store.load(self.current), target)
        except ExportError as exc:
            self._set_message(f"OBS export failed: {exc}", error=True)
            return None
        self._set_message(f"OBS persona written to {out}: in OBS (Tools → Scripts → xstreamer_obs.py) "
                          "set “Persona (JSON)” to it")
        return out

    def export_to_unity(self, folder: str | Path | None = None) -> Path | None:
        """Write the Unity component's settings file (persona + portrait; the daemon's address is the
        scene's own setting)."""
        target = self._export_folder(folder, "Export for Unity into…")
        if target is None:
            return None
        try:
            out = export_unity(self.store.load(self.current), target)
        except ExportError as exc:
            self._set_message(f"Unity export failed: {exc}", error=True)
            return None
        self._set_message(f"Unity settings written to {out}: put it under StreamingAssets and name it in "
                          "AvatarStreamClient's Settings File")
        return out

    # -- preview ------------------------------------------------------------------------------------
    def session_persona(self) -> tuple[Persona, bytes | None]:
        """What the preview opens a session with: the edited persona and its portrait bytes."""
        persona = self.edited_persona() if self.current else StoredPersona()
        portrait = None
        if persona.portrait:
            try:
                portrait = Path(persona.portrait).read_bytes()
            except OSError as exc:
                reason = exc.strerror or exc
                raise PersonaStoreError(f"the portrait {persona.portrait} cannot be read ({reason}); "
                                        "choose another image or press Clear") from exc
        return persona.to_persona(), portrait

    def session_open(self) -> tuple[Persona, bytes | None, list | None]:
        """`session_persona` plus the portrait's five face points (None where its face is found)."""
        persona, portrait = self.session_persona()
        stored = self.edited_persona() if self.current else StoredPersona()
        points = [list(p) for p in stored.face_points] if portrait is not None and stored.face_points else None
        return persona, portrait, points

    # -- misc -----------------------------------------------------------------------------------------
    def _mark_dirty(self) -> None:
        if self.current is not None:
            self.dirty = True
            self._set_message("Edited (not saved yet)")

    def _set_message(self, text: str, error: bool = False) -> None:
        self.last_error = text if error else ""
        self.message.setText(text)
        self.message.setStyleSheet("color: #b00020;" if error else "color: #333;")
        if text:
            self.statusBar().showMessage(text)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        if self.dirty:
            self.save_current()
        self.preview.shutdown()
        super().closeEvent(event)


def main(argv: list[str] | None = None) -> int:
    """`xstreamer-studio [--config-dir DIR] [--connect tcp://HOST:PORT | --serve PRESET]`."""
    parser = argparse.ArgumentParser(prog="xstreamer-studio", description="Edit personas and preview them live.")
    parser.add_argument("--config-dir", type=Path, help="persona folder parent (default: the user config dir)")
    parser.add_argument("--connect", help="open a preview session on this daemon control address")
    parser.add_argument("--serve", metavar="PRESET", help="start a local daemon with this model preset")
    parser.add_argument("--glm4voice", metavar="DIR", help="GLM-4-Voice's published parts, for --serve paper|voice")
    args = parser.parse_args(argv)
    if args.glm4voice:     # the local daemon reads it (engine_core/thinker/registry.py: XSTREAMER_GLM4VOICE_DIR)
        os.environ["XSTREAMER_GLM4VOICE_DIR"] = str(Path(args.glm4voice).resolve())
    app = QApplication.instance() or QApplication(sys.argv[:1])
    try:
        check_binding()            # PySide6 6.12.0 on Python 3.10/3.11 would abort within minutes
    except BindingError as exc:
        print(f"xstreamer-studio: {exc}", file=sys.stderr)
        return 2
    store = PersonaStore(args.config_dir / "personas") if args.config_dir else PersonaStore()
    window = MainWindow(store)
    window.show()
    if args.connect:
        window.preview.connect_to(args.connect)
    elif args.serve:
        window.preview.start_local(args.serve)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
