"""The motion Actor's training data and loop: clips made from a speech bank file (here a small one written by the
test in the bank's format: tones for speech, made-up phoneme timings, random LM states) hold the procedural
motion of their speech, and a few hundred steps on `tiny-motion` fit it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine_core.config import ModelConfig
from engine_core.motion.channels import INDEX
from engine_core.train.motion_data import motion_clips

pytestmark = pytest.mark.engine

SR = 22050


def _bank(path, n: int = 6, width: int = 32) -> None:
    rng = np.random.default_rng(0)
    arrays, plans = {}, []
    for u in range(n):
        words = [("Hello", 0.05, 0.45), ("there", 0.5, 0.9), ("lovely", 1.0, 1.5), ("friend", 1.55, 2.0)]
        phon = [("h", 0.05, 0.15), ("ə", 0.15, 0.3), ("l", 0.3, 0.38), ("oʊ", 0.38, 0.45), (" ", 0.45, 0.5),
                ("ð", 0.5, 0.6), ("ɛ", 0.6, 0.8), ("ɹ", 0.8, 0.9), (" ", 0.9, 1.0), ("l", 1.0, 1.1),
                ("ʌ", 1.1, 1.3), ("v", 1.3, 1.38), ("l", 1.38, 1.42), ("i", 1.42, 1.5), (" ", 1.5, 1.55),
                ("f", 1.55, 1.65), ("ɹ", 1.65, 1.75), ("ɛ", 1.75, 1.9), ("n", 1.9, 1.95), ("d", 1.95, 2.0)]
        t = np.arange(int(2.0 * SR)) / SR
        loud = np.zeros_like(t)
        for _, s, e in phon:
            loud[int(s * SR):int(e * SR)] = 0.0 if _ == " " else 0.5
        arrays[f"audio_{u}"] = np.round(np.sin(2 * np.pi * 180 * t) * loud * 32767 * 0.5).astype(np.int16)
        arrays[f"hidden_{u}"] = rng.normal(0, 1, (5, width)).astype(np.float16)
        plans.append({"text": "Hello there lovely friend!", "sentence": u, "voice": {}, "seed": u,
                      "phonemes": phon, "words": words, "token_chars": [0, 6, 12, 15, 19]})
    meta = {"version": 1, "seed": 0, "utterances": plans, "identities": [[101, 0], [213, 0], [327, 0]]}
    np.savez(path, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    path = tmp_path_factory.mktemp("bank") / "bank.npz"
    _bank(path)
    return path


def test_clips_hold_the_procedural_motion_of_their_speech(bank):
    cfg = ModelConfig.from_name("tiny-motion")
    clips = motion_clips(bank, cfg, clips=4, seed=1)
    assert len(clips) == 4
    for c in clips:
        t = c.speech.shape[0]
        assert c.latents.shape == (t, cfg.vae.latent_channels, 1, 1) and c.identity.shape == (1, 136)
        jaw = (c.latents[:, INDEX["jawOpen"], 0, 0].float().numpy() + 1) / 2       # latents: weights in [-1, 1]
        voiced = c.speech[:, :40].mean(1).numpy()
        # the jaw opens where there is sound and rests in the silences around it
        assert jaw.max() > 0.3 and np.corrcoef(jaw, voiced)[0, 1] > 0.4
        assert (c.hidden_frames >= 0).all() and (c.hidden_frames < t).all()
    val = motion_clips(bank, cfg, clips=3, split="val", seed=1)       # utterance 0 is the only held-out one here
    assert all(torch.equal(v.hidden, val[0].hidden) for v in val)
    assert not any(torch.equal(c.hidden, val[0].hidden) for c in clips)
    with pytest.raises(ValueError, match="split"):
        motion_clips(bank, cfg, clips=2, split="nope")
    with pytest.raises(ValueError, match="576"):
        motion_clips(bank, ModelConfig.from_name("default"), clips=2)


def test_a_few_hundred_steps_fit_the_motion(bank, tmp_path):
    from engine_core.train.actor import ActorTrainOptions, train_actor

    opt = ActorTrainOptions(steps=150, batch=16, lr=2e-3, warmup=20, log_every=50, save_every=1000, clips=12)
    res = train_actor(bank, tmp_path / "run", "tiny-motion", "cpu", options=opt, progress=False)
    assert res["step"] == 150 and res["loss"] < 0.5 * res["first_loss"], res
    from engine_core.engine import Engine

    s = Engine.load(str(tmp_path / "run")).open_session()
    c = s.next_chunk()
    assert c.motion is not None and c.motion.shape == (c.num_frames, 26) and np.isfinite(c.motion).all()
    s.close()
