"""Record a session's media packets to an mp4 (H.264 yuv420p 25 fps + AAC) through PyAV.

    with Recorder("out.mp4") as rec:
        for pkt, payload in session.packets(timeout=5):
            rec.add(pkt, payload)
            ...

Timestamps come from the packets' pts (audio-sample clock): video in the 1/25 time base
(frame index = (pts - pts0) / 882), audio sample-accurate in 1/sample_rate. Missing video frames (seq gaps)
repeat the previous frame and missing audio becomes silence, so the file stays constant-rate; at `close()`
the shorter track is padded so audio and video durations agree. Needs `av` (pip install xstreamer[media]).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdk.protocol.messages import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME


MATTE = np.array([128.0, 128.0, 128.0], np.float32)   # what shows through a transparent avatar in an mp4


def flatten_alpha(frame: np.ndarray) -> np.ndarray:
    """An RGB frame of an RGB or RGBA (straight alpha) frame: transparency over a neutral grey matte (an mp4 has no
    alpha; OBS and Unity receive the alpha itself)."""
    if frame.shape[2] == 3:
        return frame
    a = frame[:, :, 3:4].astype(np.float32) / 255.0
    return (frame[:, :, :3] * a + MATTE * (1.0 - a) + 0.5).astype(np.uint8)


class Recorder:
    """mp4 writer fed with (packet, payload) pairs; text packets are kept in `texts`."""

    def __init__(self, path: str | Path, sample_rate: int = SAMPLE_RATE, fps: int = FPS, crf: int = 23,
                 audio_bitrate: int = 96_000):
        import av  # imported here so that `import sdk.recorder` works without PyAV installed

        self.path = Path(path)
        self.sample_rate = sample_rate
        self.fps = fps
        self.spf = sample_rate // fps                   # samples per video frame (882)
        self._av = av
        self._out = av.open(str(self.path), mode="w", format="mp4")
        self._crf = crf
        self._vs: Any = None
        self._as = self._out.add_stream("aac", rate=sample_rate, layout="mono")
        self._as.bit_rate = audio_bitrate
        self._as.time_base = Fraction(1, sample_rate)
        self._fifo = av.AudioFifo()
        self.pts0: int | None = None
        self.video_frames = 0                           # frames written (incl. repeats)
        self.audio_samples = 0                          # samples written to the fifo (incl. silence)
        self._last_rgb: np.ndarray | None = None
        self.texts: list[tuple[int, str, str]] = []     # (pts, role, text)
        self.closed = False

    def _video_stream(self, w: int, h: int) -> Any:
        if self._vs is None:
            vs = self._out.add_stream("libx264", rate=self.fps)
            vs.width, vs.height = w, h
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(self._crf), "preset": "veryfast", "tune": "zerolatency"}
            self._vs = vs
        return self._vs

    def add(self, packet: Any, payload: bytes | None) -> None:
        """Add one media packet (audio/video are written; text is collected; others ignored)."""
        if self.closed:
            raise RuntimeError("recorder is closed")
        kind = packet.type
        if kind == "text":
            self.texts.append((packet.pts, packet.role, packet.text))
            return
        if kind not in ("audio", "video") or payload is None:
            return
        if self.pts0 is None:
            self.pts0 = packet.pts
        rel = packet.pts - self.pts0
        if rel < 0:
            return   # before the start: ignore
        if kind == "audio":
            pcm = np.frombuffer(payload, dtype="<i2")
            if rel > self.audio_samples:                 # a gap: silence up to this packet
                self._write_audio(np.zeros(rel - self.audio_samples, np.int16))
            elif rel < self.audio_samples:               # overlap: keep only the new part
                pcm = pcm[self.audio_samples - rel:]
            self._write_audio(pcm)
        else:
            w, h = int(packet.width), int(packet.height)
            rgb = flatten_alpha(np.frombuffer(payload, dtype=np.uint8).reshape(h, w, -1))
            index = rel // self.spf
            while self._last_rgb is not None and self.video_frames < index:   # gap: hold the last frame
                self._write_video(self._last_rgb)
            if index >= self.video_frames:
                self._write_video(rgb)

    def add_chunk(self, pts: int, audio: np.ndarray, frames: np.ndarray) -> None:
        """Write raw media directly (in-process rendering): int16 [n*882] audio and uint8 [n, H, W, 3|4] frames."""
        from sdk.protocol.messages import AudioPacket, VideoPacket
        n = int(frames.shape[0])
        for i in range(n):
            p = pts + i * SAMPLES_PER_FRAME
            self.add(AudioPacket(session="local", utt=0, seq=0, pts=p),
                     np.ascontiguousarray(audio[i * SAMPLES_PER_FRAME:(i + 1) * SAMPLES_PER_FRAME], "<i2").tobytes())
            fmt: Literal["rgb24", "rgba32"] = "rgba32" if frames.shape[3] == 4 else "rgb24"
            self.add(VideoPacket(session="local", utt=0, seq=0, pts=p, width=int(frames.shape[2]),
                                 height=int(frames.shape[1]), format=fmt), np.ascontiguousarray(frames[i]).tobytes())

    def _write_video(self, rgb: np.ndarray) -> None:
        vs = self._video_stream(rgb.shape[1], rgb.shape[0])
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = self.video_frames                   # 1/fps time base (the encoder's default)
        for p in vs.encode(frame):
            self._out.mux(p)
        self._last_rgb = rgb
        self.video_frames += 1

    def _write_audio(self, pcm: np.ndarray, final: bool = False) -> None:
        if pcm.size:
            frame = self._av.AudioFrame.from_ndarray(pcm.astype(np.int16)[None, :], format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self.audio_samples
            frame.time_base = Fraction(1, self.sample_rate)
            self._fifo.write(frame)
            self.audio_samples += int(pcm.size)
        size = self._as.codec_context.frame_size or 1024
        while self._fifo.samples >= size or (final and self._fifo.samples > 0):
            out = self._fifo.read(min(size, self._fifo.samples))
            for p in self._as.encode(out):
                self._out.mux(p)

    def close(self) -> None:
        """Pad the shorter track, flush the encoders and finish the file. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._last_rgb is not None:
            want = self.video_frames * self.spf
            if self.audio_samples < want:
                self._write_audio(np.zeros(want - self.audio_samples, np.int16))
            while self.video_frames * self.spf < self.audio_samples:
                self._write_video(self._last_rgb)
        self._write_audio(np.zeros(0, np.int16), final=True)
        for p in self._as.encode(None):
            self._out.mux(p)
        if self._vs is not None:
            for p in self._vs.encode(None):
                self._out.mux(p)
        self._out.close()

    @property
    def duration_s(self) -> float:
        """Video duration written so far (seconds)."""
        return self.video_frames / self.fps

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
