"""The persona form: name, system prompt, greeting, voice, reply cap and model preset (portrait beside it).

The voice list is the voices the models have (`sdk.protocol.VOICES`): nothing else can be chosen or typed.
"""

from __future__ import annotations

from pydantic import ValidationError
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLineEdit, QPlainTextEdit, QSpinBox, QWidget

from sdk.protocol import MAX_REPLY_SENTENCES, VOICES

from ..personas import MODEL_PRESETS, PersonaStoreError, StoredPersona


class PersonaEditor(QWidget):
    """Edits the text fields of a `StoredPersona`; emits `changed` on every user edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit()
        self.name.setMaxLength(80)
        self.name.setPlaceholderText("Persona name")
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setPlaceholderText("Who the avatar is and how it talks…")
        self.greeting = QPlainTextEdit()
        self.greeting.setPlaceholderText("What it says when a session opens (optional)")
        self.greeting.setMaximumHeight(70)
        self.voice = QComboBox()
        self.voice.addItems(VOICES)
        self.max_sentences = QSpinBox()
        self.max_sentences.setRange(0, MAX_REPLY_SENTENCES)
        self.max_sentences.setSpecialValueText("no limit")
        self.max_sentences.setSuffix(" sentences")
        self.max_sentences.setToolTip("The reply stops after this many sentences (the model keeps to it)")
        self.model = QComboBox()
        self.model.addItems(MODEL_PRESETS)
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Greeting", self.greeting)
        form.addRow("Voice", self.voice)
        form.addRow("Reply length", self.max_sentences)
        form.addRow("Model preset", self.model)
        self._loading = False
        self._base = StoredPersona()
        for sig in (self.name.textEdited, self.system_prompt.textChanged, self.greeting.textChanged,
                    self.voice.currentTextChanged, self.max_sentences.valueChanged,
                    self.model.currentTextChanged):
            sig.connect(self._emit_changed)

    def _emit_changed(self, *_: object) -> None:
        if not self._loading:
            self.changed.emit()

    def set_persona(self, persona: StoredPersona) -> None:
        """Show `persona` (does not emit `changed`)."""
        self._loading = True
        try:
            self._base = persona
            self.name.setText(persona.name)
            self.system_prompt.setPlainText(persona.system_prompt)
            self.greeting.setPlainText(persona.greeting)
            # A voice no model has (an old file) is not offered: the first voice shows, and is saved.
            self.voice.setCurrentIndex(max(0, self.voice.findText(persona.voice)))
            self.max_sentences.setValue(persona.max_reply_sentences)
            if self.model.findText(persona.model) < 0:
                self.model.addItem(persona.model)
            self.model.setCurrentText(persona.model)
        finally:
            self._loading = False

    def persona(self, **overrides: object) -> StoredPersona:
        """The edited persona (fields not on the form come from the last `set_persona`).

        Raises PersonaStoreError naming the first invalid field."""
        data = self._base.model_dump()
        data.update(name=self.name.text().strip(), system_prompt=self.system_prompt.toPlainText().strip(),
                    greeting=self.greeting.toPlainText().strip(), voice=self.voice.currentText().strip(),
                    max_reply_sentences=self.max_sentences.value(), model=self.model.currentText())
        data.update(overrides)
        try:
            return StoredPersona.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise PersonaStoreError(f"{field.replace('_', ' ')}: {first['msg']}") from exc
