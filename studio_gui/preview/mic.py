"""Push-to-talk microphone: QAudioSource (16 kHz mono Int16) -> PCM16 chunks as Qt signals.

`chunk(pcm, sample_rate, final)` fires about every 100 ms while the button is held and once with
``final=True`` on release (the worker forwards them to `session.hear`). Without an input device
`available` is False and `reason` says why; the window disables the button instead of failing.
"""

from __future__ import annotations

from PySide6.QtCore import QIODevice, QObject, Signal

MIC_RATE = 16000


class PushToTalk(QObject):
    """Records between `start()` and `stop()`; emits `chunk(bytes, int, bool)`."""

    chunk = Signal(bytes, int, bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source = None
        self._io: QIODevice | None = None
        self.available = False
        self.reason = ""
        try:
            from PySide6.QtMultimedia import QAudioFormat, QMediaDevices
        except ImportError:
            self.reason = "QtMultimedia is not installed"
            return
        self._dev = QMediaDevices.defaultAudioInput()
        if self._dev.isNull():
            self.reason = "no microphone found"
            return
        self._fmt = QAudioFormat()
        self._fmt.setSampleRate(MIC_RATE)
        self._fmt.setChannelCount(1)
        self._fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        if not self._dev.isFormatSupported(self._fmt):
            self.reason = "the microphone does not record 16 kHz mono Int16"
            return
        self.available = True

    @property
    def recording(self) -> bool:
        return self._io is not None

    def start(self) -> bool:
        """Begin recording; False (and nothing happens) without a microphone."""
        if not self.available or self.recording:
            return False
        from PySide6.QtMultimedia import QAudioSource

        self.source = QAudioSource(self._dev, self._fmt, self)
        self.source.setBufferSize(MIC_RATE // 5)
        self._io = self.source.start()
        self._io.readyRead.connect(self._read)
        return True

    def _read(self) -> None:
        if self._io is None:
            return
        data = bytes(self._io.readAll().data())
        data = data[:len(data) // 2 * 2]
        if data:
            self.chunk.emit(data, MIC_RATE, False)

    def stop(self) -> None:
        """Stop recording and end the user's turn (a final, possibly empty, chunk)."""
        if self._io is None:
            return
        self._read()
        self.source.stop()
        self._io = None
        self.chunk.emit(b"", MIC_RATE, True)
