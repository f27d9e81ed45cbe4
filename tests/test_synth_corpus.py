"""Corpus generation end to end: format, splits, determinism across worker counts, speech timings."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from engine_core.data.synth import identity_params, render_clip
from engine_core.data.synth.corpus import SPLITS, CorpusOptions, generate_corpus, read_manifest
from engine_core.data.synth.render import load_clip
from engine_core.data.synth.speech import VoiceParams, synthesize
from engine_core.eval.lipsync import pearson
from engine_core.eval.mouth import mouth_opening


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    generate_corpus(CorpusOptions(out=out, clips=4, seed=7, seconds_min=1.0, seconds_max=3.5), progress=False)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_and_clip_format(corpus):
    man = read_manifest(corpus)
    assert set(man) == {"version", "fps", "sample_rate", "size", "clips"}
    assert (man["version"], man["fps"], man["sample_rate"], man["size"]) == (1, 25, 22050, 256)
    assert [c["id"] for c in man["clips"]] == ["000000", "000001", "000002", "000003"]
    for c in man["clips"]:
        assert set(c) == {"id", "dir", "split", "identity", "sentence", "text", "frames", "seed"}
        d = corpus / c["dir"]
        with np.load(d / "frames.npz") as z:
            assert list(z.keys()) == ["frames"]
            f = z["frames"]
        assert f.dtype == np.uint8 and f.shape == (c["frames"], 256, 256, 3)
        with wave.open(str(d / "audio.wav")) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
            assert w.getnframes() == c["frames"] * 882
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        assert np.abs(pcm).max() > 5000  # there is speech
        meta = json.loads((d / "meta.json").read_text())
        assert meta["text"] == c["text"] and meta["frames"] == c["frames"]
        for k in ("mouth_open", "mouth_width", "blink"):
            v = np.array(meta[k])
            assert v.shape == (c["frames"],) and v.min() >= 0 and v.max() <= 1
        assert set(meta["head_pose"]) == {"dx", "dy", "angle"}
        assert len(meta["face_box"]) == 4 and len(meta["mouth_box"]) == 4
        assert meta["words"] and all(a < b for _, a, b in meta["words"])
        assert (d / "portrait.png").stat().st_size > 1000
        assert 1.0 <= c["frames"] / 25 <= 3.5 + 1.0


def test_splits_follow_identity_and_sentence_ids(corpus):
    man = read_manifest(corpus)
    seen = set()
    for c in man["clips"]:
        assert c["split"] in SPLITS
        seen.add(c["split"])
        held_id, held_s = c["identity"] % 10 == 0, c["sentence"] % 10 == 0
        expect = {(False, False): "train", (True, False): "heldout_identity", (False, True): "heldout_sentence",
                  (True, True): "heldout_both"}[(held_id, held_s)]
        assert c["split"] == expect
    assert seen == set(SPLITS)  # clips 0..3 cover all four splits


@pytest.mark.process
def test_same_seed_identical_bytes_with_two_workers(corpus, tmp_path):
    generate_corpus(CorpusOptions(out=tmp_path, clips=4, seed=7, seconds_min=1.0, seconds_max=3.5, workers=2),
                    progress=False)
    a, b = _files(corpus), _files(tmp_path)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a)


def test_speech_deterministic_and_varied():
    vp = VoiceParams(length_scale=1.0, pitch=1.0)
    a, b = synthesize("Hello there.", vp, 3), synthesize("Hello there.", vp, 3)
    assert np.array_equal(a.audio, b.audio)
    c = synthesize("Hello there.", vp, 4)
    assert len(c.audio) != len(a.audio) or not np.array_equal(a.audio, c.audio)
    slow = synthesize("Hello there.", VoiceParams(length_scale=1.3), 3)
    assert len(slow.audio) > 1.15 * len(a.audio)
    # timings cover the audio and are ordered
    assert a.phonemes[-1][2] == pytest.approx(len(a.audio) / 22050, abs=1e-3)
    assert [w for w, _, _ in a.words] == ["Hello", "there"]


def test_render_clip_ground_truth_matches_pixels():
    clip = render_clip(identity_params(55), "Bob ate a banana.", VoiceParams(), seed=1, lead_s=0.3, tail_s=0.3)
    assert clip.audio.shape == (len(clip.frames) * 882,)
    measured = mouth_opening(clip.frames, clip.meta["mouth_boxes"])
    assert pearson(measured, clip.meta["mouth_open"]) > 0.9
    again = render_clip(identity_params(55), "Bob ate a banana.", VoiceParams(), seed=1, lead_s=0.3, tail_s=0.3)
    assert np.array_equal(clip.frames, again.frames) and np.array_equal(clip.audio, again.audio)


def test_load_clip_round_trip(corpus):
    c = load_clip(corpus / "clips" / "000001")
    assert c.portrait.shape == (256, 256, 3) and c.frames.shape[0] == c.meta["frames"]


def test_bad_options():
    with pytest.raises(ValueError):
        CorpusOptions(out=Path("x"), clips=0).validate()
    with pytest.raises(ValueError):
        CorpusOptions(out=Path("x"), clips=1, seconds_min=5, seconds_max=2).validate()
    with pytest.raises(ValueError):
        render_clip(identity_params(1), "   ", VoiceParams(), 0)
