"""`xstreamer eval` end to end on a tiny corpus: truth-check sanity and the engine glue (tiny preset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_core.data.synth.corpus import CorpusOptions, generate_corpus
from xstreamer.cli import main

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evalcorpus")
    generate_corpus(CorpusOptions(out=out, clips=2, seed=3, seconds_min=1.0, seconds_max=2.5), progress=False)
    return out


def test_truth_check(corpus, tmp_path):
    out = tmp_path / "m.json"
    rc = main(["eval", "--data", str(corpus), "--split", "heldout_both", "--clips", "1", "--truth-check",
               "--out", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    self_, deg = r["truth_vs_truth"], r["truth_vs_degraded"]
    assert self_["lipsync_mouth_corr"] == pytest.approx(1.0) and self_["face_ssim"] == pytest.approx(1.0)
    assert self_["fvd_proxy_frechet"] == pytest.approx(0.0, abs=1e-6)
    assert deg["face_ssim"] < 0.99 and deg["cpbd"] < self_["cpbd"]
    assert deg["lipsync_mouth_corr"] < 1.0
    assert r["per_clip"]["self"][0]["id_sim_note"]  # ID-Sim reported or explained, never silently missing


def test_bad_data_dir(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path), "--truth-check", "--out", str(tmp_path / "x.json")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_engine_tiny_glue(corpus, tmp_path):
    pytest.importorskip("engine_core.engine.engine")
    out = tmp_path / "m.json"
    rc = main(["eval", "--data", str(corpus), "--model", "tiny", "--split", "heldout_both", "--clips", "1",
               "--no-id-sim", "--out", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["mode"] == "model" and r["clips"] == 1
    row = r["per_clip"][0]
    assert row["frames"] > 0 and row["truth_frames"] > 0
    assert 0 <= row["face_ssim"] <= 1 and row["face_psnr"] > 0
    for k in ("lipsync_mouth_corr", "audio_mouth_corr", "cpbd", "fvd_proxy_frechet"):
        assert k in r["summary"]


def test_corpus_voice_lays_pieces_out_as_the_engine_plays_them():
    """The cascade Thinker speaking through CorpusVoice plays exactly the audio the truth is rendered from."""
    import numpy as np

    from engine_core.data.synth.characters import sample_identity
    from engine_core.data.synth.render import render_clip
    from engine_core.data.synth.speech import VoiceParams
    from engine_core.eval.voice import CorpusVoice
    from engine_core.thinker.cascade import CascadeThinker

    voice = CorpusVoice()
    thinker = CascadeThinker(voice=voice)
    text = "Hello there. The museum opens at noon, so bring the umbrella!"
    voice.start(5)
    segs = list(thinker.speak(text))
    assert len(voice.pieces) == len(segs) >= 2                     # several pieces, each on whole frames
    played = np.concatenate([s.audio for s in segs])
    speech = voice.speech()
    assert np.array_equal(played, speech.audio)
    assert [s.start_frame for s in segs] == list(np.cumsum([0] + [s.num_frames for s in segs[:-1]]))
    truth = render_clip(sample_identity(1), text, VoiceParams(), 5, lead_s=0.0, tail_s=0.0,
                        speech=speech)
    assert len(truth.frames) == sum(s.num_frames for s in segs)
    assert np.abs(truth.audio / 32767 - 0.9 * np.clip(played, -1, 1)).max() < 1e-4
    voice.start(5)
    again = np.concatenate([s.audio for s in thinker.speak(text)])
    assert np.array_equal(again, played)                           # the same seed speaks the same audio
    voice.start(6)
    assert not np.array_equal(np.concatenate([s.audio for s in thinker.speak(text)])[: len(played)], played)


def test_default_model_eval_is_frame_aligned_with_its_truth(corpus, tmp_path):
    """`eval --model default`: the generated utterance's audio is the truth's audio, sample for sample from its
    first frame, so frame i of the video and of the truth are the same instant."""
    import numpy as np

    out = tmp_path / "m.json"
    rc = main(["eval", "--data", str(corpus), "--model", "default", "--split", "heldout_both", "--clips", "1",
               "--no-id-sim", "--out", str(out)])
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["speech"] == "corpus-joe"
    row = r["per_clip"][0]
    assert row["frames"] == row["truth_frames"] and row["audio_truth_corr"] > 0.9999
    assert np.isfinite(row["lipsync_mouth_corr"])
