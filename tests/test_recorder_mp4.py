"""Recorder: mp4 (H.264 yuv420p + AAC) with timestamps from pts, checked by decoding it with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from sdk.protocol.messages import AudioPacket, TextPacket, VideoPacket
from sdk.recorder import Recorder

SPF = 882


def check_mp4(path: Path) -> dict:
    """Assert the xstreamer mp4 contract; returns durations and counts."""
    with av.open(str(path)) as c:
        kinds = sorted(s.type for s in c.streams)
        assert kinds == ["audio", "video"], kinds
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, a.codec_context.name) == ("h264", "aac")
        assert (v.codec_context.width, v.codec_context.height) == (256, 256)
        assert v.average_rate == 25 and a.rate == 22050
        v_dur = float(v.duration * v.time_base)
        a_dur = float(a.duration * a.time_base)
        frames = [f for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert abs(v_dur - a_dur) <= 0.040, (v_dur, a_dur)
    assert abs(len(frames) / 25 - v_dur) < 1e-6
    assert frames[0].format.name == "yuv420p"
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    return {"video_s": v_dur, "audio_s": a_dur, "frames": frames, "pcm": pcm}


def test_recorder_writes_timestamps_from_pts_and_fills_gaps(tmp_path):
    out = tmp_path / "rec.mp4"
    base = 123 * SPF                       # the stream does not start at pts 0
    rec = Recorder(out)
    seq = 0
    for f in range(30):
        if f in (10, 11):                  # two frames lost on the wire (audio and video)
            seq += 4
            continue
        tone = (np.sin(2 * np.pi * 440 * (np.arange(SPF) + f * SPF) / 22050) * 10000).astype("<i2")
        rec.add(AudioPacket(session="s", utt=1, seq=seq, pts=base + f * SPF), tone.tobytes())
        img = np.full((256, 256, 3), (f * 8) % 256, np.uint8)
        rec.add(VideoPacket(session="s", utt=1, seq=seq + 1, pts=base + f * SPF), img.tobytes())
        seq += 2
    rec.add(TextPacket(session="s", utt=1, seq=seq, pts=base, text="hi"), None)
    rec.close()
    info = check_mp4(out)
    assert len(info["frames"]) == 30 and abs(info["video_s"] - 1.2) < 1e-6 and abs(info["audio_s"] - 1.2) < 0.001
    # gap: frame 9 is held for 10 and 11; frame 12 is new (luma of a flat grey frame tracks its value)
    luma = [float(fr.to_ndarray(format="gray").mean()) for fr in info["frames"]]
    assert abs(luma[10] - luma[9]) < 1 and abs(luma[11] - luma[9]) < 1 and luma[12] > luma[9] + 5
    # audio: the tone, with silence where the packets were lost (AAC is lossy: compare energies)
    pcm = info["pcm"].astype(np.float64)
    if pcm.dtype.kind == "f" or np.abs(pcm).max() <= 1.0:
        pcm = pcm * 32767
    energy = lambda f: np.sqrt(np.mean(pcm[f * SPF + 200:(f + 1) * SPF - 200] ** 2))  # noqa: E731
    assert energy(5) > 3000 and energy(20) > 3000 and energy(10) < 1000 and energy(11) < 1000
    assert rec.texts == [(base, "assistant", "hi")]


def test_recorder_pads_the_shorter_track(tmp_path):
    out = tmp_path / "pad.mp4"
    with Recorder(out) as rec:             # video runs 5 frames longer than audio
        rec.add_chunk(0, np.zeros(10 * SPF, np.int16), np.zeros((10, 256, 256, 3), np.uint8))
        for f in range(10, 15):
            rec.add(VideoPacket(session="s", utt=0, seq=0, pts=f * SPF), bytes(256 * 256 * 3))
    info = check_mp4(out)
    assert len(info["frames"]) == 15 and abs(info["audio_s"] - 0.6) < 0.001
