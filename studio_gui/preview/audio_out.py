"""Audio playback and the master clock of the preview.

Received PCM16 packets go into a `PcmQueue` (keeps the pts of every sample). With an output device, a
QAudioSink (22,050 Hz mono Int16) pulls from a QIODevice that reads the queue, so audio *is* the clock:
``clock = pts of the last sample handed to the device - what the device still buffers``. Without a device
(offscreen CI, a server) a 10 ms QTimer consumes the queue at real-time rate and the clock is the pts of
the last consumed sample: the same code path, minus the speaker.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QIODevice, QObject, QTimer

from sdk.protocol import SAMPLE_RATE, SAMPLES_PER_FRAME


class PcmQueue:
    """FIFO of PCM16 mono packets with their pts; `read(n)` pops up to n samples (bytes)."""

    def __init__(self) -> None:
        self.packets: deque[tuple[int, bytes]] = deque()
        self.read_pts: int | None = None     # pts just after the last sample read
        self.queued = 0                       # samples queued

    def push(self, pts: int, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise ValueError("PCM16 payload has an odd number of bytes")
        if pcm:
            self.packets.append((pts, pcm))
            self.queued += len(pcm) // 2

    def read(self, samples: int) -> bytes:
        out = bytearray()
        while samples > 0 and self.packets:
            pts, pcm = self.packets[0]
            take = min(samples, len(pcm) // 2)
            out += pcm[:2 * take]
            self.read_pts = pts + take
            if take * 2 == len(pcm):
                self.packets.popleft()
            else:
                self.packets[0] = (pts + take, pcm[2 * take:])
            samples -= take
            self.queued -= take
        return bytes(out)

    def clear(self) -> None:
        self.packets.clear()
        self.queued = 0


class _PullDevice(QIODevice):
    """The QIODevice a QAudioSink pulls from: queued PCM, then silence (keeps the sink running)."""

    def __init__(self, queue: PcmQueue, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue

    def readData(self, maxlen: int) -> bytes:  # noqa: N802 (Qt name)
        data = self.queue.read(maxlen // 2)
        if not data:  # nothing queued: a little silence keeps the sink from going idle
            return bytes(min(maxlen, SAMPLES_PER_FRAME) & ~1)
        return data

    def writeData(self, data: bytes) -> int:  # noqa: N802 (Qt name)
        return -1

    def bytesAvailable(self) -> int:  # noqa: N802 (Qt name)
        return 2 * self.queue.queued + 4096 + super().bytesAvailable()

    def isSequential(self) -> bool:  # noqa: N802 (Qt name)
        return True


class AudioPlayer(QObject):
    """Plays pushed packets and tells the audio clock. `has_device` is False when it runs on a timer."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, use_device: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.sample_rate = sample_rate
        self.max_queue_s = 2.0
        self.queue = PcmQueue()
        self.sink = None
        self.device: _PullDevice | None = None
        self.note = ""
        if use_device:
            self._open_device()
        self.has_device = self.sink is not None
        self._timer = QTimer(self)
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)
        self._last = time.monotonic()
        self._debt = 0.0
        if not self.has_device:
            self._timer.start()

    def _open_device(self) -> None:
        try:
            from PySide6.QtMultimedia import QAudioFormat, QAudioSink, QMediaDevices
        except ImportError:
            self.note = "QtMultimedia is not installed: audio is silent (clock from a timer)"
            return
        dev = QMediaDevices.defaultAudioOutput()
        if dev.isNull():
            self.note = "No audio output device: audio is silent (clock from a timer)"
            return
        fmt = QAudioFormat()
        fmt.setSampleRate(self.sample_rate)
        fmt.setChannelCount(1)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        if not dev.isFormatSupported(fmt):
            self.note = f"The audio device does not play {self.sample_rate} Hz mono Int16: silent"
            return
        self.device = _PullDevice(self.queue, self)
        self.device.open(QIODevice.OpenModeFlag.ReadOnly)
        self.sink = QAudioSink(dev, fmt, self)
        self.sink.setBufferSize(2 * self.sample_rate // 10)   # 100 ms
        self.sink.start(self.device)
        self.note = f"Audio: {dev.description()}"

    def _tick(self) -> None:
        now = time.monotonic()
        self._debt += (now - self._last) * self.sample_rate
        self._last = now
        n = int(self._debt)
        self._debt -= n
        if self.queue.queued:
            self.queue.read(n)
        else:
            self._debt = 0.0

    def push(self, pts: int, pcm: bytes) -> None:
        """Queue one PCM16 packet whose first sample has presentation time `pts` (samples).

        More than `max_queue_s` queued (a stalled device, a daemon running ahead) drops the oldest audio
        so the preview catches up instead of drifting further behind."""
        self.queue.push(pts, pcm)
        excess = self.queue.queued - int(self.max_queue_s * self.sample_rate)
        if excess > 0:
            self.queue.read(excess)

    def flush(self) -> None:
        """Drop everything queued (barge-in)."""
        self.queue.clear()

    def buffered_samples(self) -> int:
        """Samples queued but not yet heard."""
        in_sink = 0
        if self.sink is not None:
            in_sink = max(0, self.sink.bufferSize() - self.sink.bytesFree()) // 2
        return self.queue.queued + in_sink

    def clock(self) -> int | None:
        """pts (samples) of the audio being heard now, or None before any audio was played."""
        if self.queue.read_pts is None:
            return None
        lag = 0
        if self.sink is not None:
            lag = max(0, self.sink.bufferSize() - self.sink.bytesFree()) // 2
        return max(0, self.queue.read_pts - lag)

    def close(self) -> None:
        self._timer.stop()
        if self.sink is not None:
            self.sink.stop()
