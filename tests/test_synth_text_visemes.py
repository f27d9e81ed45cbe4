"""Sentence generator (distinct, split by id) and viseme / blink / head-sway tracks."""

from __future__ import annotations

import numpy as np
import pytest

from engine_core.data.synth.sentences import NUM_SENTENCES, sentence_split, sentence_text
from engine_core.data.synth.visemes import VISEMES, blink_track, head_pose_track, mouth_tracks, viseme_of


def test_sentences_are_distinct_and_filled():
    ids = list(range(0, 6000)) + list(range(NUM_SENTENCES - 3000, NUM_SENTENCES))
    texts = [sentence_text(i) for i in ids]
    assert len(set(texts)) == len(texts)
    assert NUM_SENTENCES >= 100_000
    assert all("{" not in t and t[0].isupper() and t[-1] in ".?!" for t in texts)
    assert sentence_text(1234) == sentence_text(1234)


def test_sentence_bad_id_and_split():
    with pytest.raises(ValueError):
        sentence_text(-1)
    with pytest.raises(ValueError):
        sentence_text(NUM_SENTENCES)
    assert sentence_split(20) == "heldout" and sentence_split(21) == "train"


def test_viseme_mapping():
    assert viseme_of("p") == viseme_of("m") == "PBM"
    assert viseme_of("ɑ") == "AA" and viseme_of("u") == "W"
    assert viseme_of(".") == viseme_of(" ") == "sil"
    assert VISEMES["AA"][0] > VISEMES["EH"][0] > VISEMES["PBM"][0]


def test_mouth_tracks_follow_phonemes():
    # silence 0-0.4 s, "a" 0.4-0.8 s, "m" 0.8-1.2 s, silence to 2 s
    ph = [("^", 0.0, 0.4), ("a", 0.4, 0.8), ("m", 0.8, 1.2), ("$", 1.2, 2.0)]
    tr = mouth_tracks(ph, 50)
    o = tr["mouth_open"]
    assert o.shape == (50,) and o.dtype == np.float32
    assert o[:8].max() < 0.05 and o[40:].max() < 0.05
    assert o[14:18].min() > 0.8          # the middle of "a" is wide open
    assert o[25:28].max() < 0.15         # the middle of "m" is closed
    assert np.abs(np.diff(o)).max() < 0.5  # smoothed, no jumps
    shifted = mouth_tracks(ph, 50, offset=0.4)["mouth_open"]
    assert np.argmax(shifted) == np.argmax(o) + 10


def test_blink_and_pose_tracks():
    rng = np.random.default_rng(0)
    b = blink_track(500, rng)
    assert b.min() == 0 and b.max() == 1.0
    closed_runs = np.sum((b[1:] >= 1.0) & (b[:-1] < 1.0))
    assert 2 <= closed_runs <= 14  # blinks every 1.5-5 s over 20 s
    pose = head_pose_track(500, rng, np.zeros(500, bool))
    for k, lim in (("dx", 6), ("dy", 4), ("angle", 6)):
        assert np.abs(pose[k]).max() < lim and pose[k].std() > 0.1
        assert np.abs(np.diff(pose[k])).max() < 0.6
