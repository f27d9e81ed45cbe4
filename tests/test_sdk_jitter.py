"""JitterBuffer: audio is the master clock; seq gaps, late/dropped frames, holding, underruns, resets."""

from __future__ import annotations

import numpy as np

from sdk.jitter import JitterBuffer
from sdk.protocol.messages import AudioPacket, EventPacket, VideoPacket

SPF = 882


def packets(first_seq: int, first_frame: int, n: int, skip: set[int] = frozenset()):
    """Audio+video packets for frames [first_frame, first_frame+n); frame f's audio samples all equal f."""
    seq = first_seq
    for f in range(first_frame, first_frame + n):
        a = AudioPacket(session="s", utt=1, seq=seq, pts=f * SPF)
        v = VideoPacket(session="s", utt=1, seq=seq + 1, pts=f * SPF)
        seq += 2
        if f in skip:
            continue
        yield a, np.full(SPF, f, np.int16).tobytes()
        yield v, bytes([f % 256]) * (256 * 256 * 3)


def test_audio_clock_video_sync_and_stats():
    jb = JitterBuffer(prebuffer_ms=80)
    assert jb.pull_audio(100).tolist() == [0] * 100 and jb.clock is None      # nothing yet: silence
    for p in packets(0, 10, 10, skip={13}):
        jb.push(*p)
    jb.push(EventPacket(session="s", utt=1, seq=20, pts=20 * SPF, event="utterance_end"), None)
    assert jb.stats().seq_gaps == 2   # frame 13's audio + video never arrived
    # playback starts at the first packet's pts; audio comes out sample-exact
    out = jb.pull_audio(SPF * 2)
    assert jb.clock == 12 * SPF and out[:SPF].tolist() == [10] * SPF and out[SPF:].tolist() == [11] * SPF
    pts, rgb = jb.video_for_clock()
    assert pts == 11 * SPF and rgb[0] == 11 and jb.stats().dropped_frames == 1   # frame 10 was never shown
    out = jb.pull_audio(SPF * 2)                 # frame 12, then the lost frame 13 plays as silence
    assert out[:SPF].tolist() == [12] * SPF and out[SPF:].tolist() == [0] * SPF and jb.clock == 14 * SPF
    assert jb.video_for_clock()[0] == 12 * SPF   # newest frame <= clock (13 is missing: 12 is held)
    assert jb.stats().av_offset_ms < 0
    jb.pull_audio(SPF * 6)                       # frames 14..19, everything
    assert jb.video_for_clock()[0] == 19 * SPF
    assert jb.stats().underruns == 0
    out = jb.pull_audio(100)                     # starved: silence, counted, last frame held
    assert not out.any() and jb.stats().underruns == 1
    assert jb.video_for_clock()[0] == 19 * SPF
    assert [p.type for p, _ in jb.pop_others()] == ["event"]


def test_restart_resets_and_late_video_is_counted():
    jb = JitterBuffer(prebuffer_ms=40)
    for p in packets(100, 50, 3):
        jb.push(*p)
    jb.pull_audio(SPF * 2)
    late = VideoPacket(session="s", utt=1, seq=106, pts=50 * SPF)
    jb.push(late, b"\x00" * (256 * 256 * 3))
    assert jb.stats().late_frames == 1
    for p in packets(0, 0, 3):                   # seq went backwards: a new stream (daemon restart)
        jb.push(*p)
    s = jb.stats()
    assert s.resets == 1 and jb.clock is None and s.buffered_ms == 3 * 40
    assert jb.pull_audio(SPF)[0] == 0 and jb.clock == SPF
