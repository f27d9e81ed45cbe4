"""The Actor's frame-speech path (`actor.frame_speech`): each latent frame's video tokens get a projection of the
speech features of the frame their time id names; zero-initialised, so a model given the path starts as the model
without it (fine-tuning from a checkpoint that lacks it)."""

from __future__ import annotations

import dataclasses

import torch

from engine_core.actor.model import Actor, ChunkCond
from engine_core.config import ModelConfig
from tests.test_actor_mechanisms import make_inputs
from tests.test_train_actor import write_clip_dataset


def _cfg(frame_speech: bool, temporal_factor: int = 1, chunk_frames: int | None = None) -> ModelConfig:
    cfg = ModelConfig.from_name("tiny")
    cfg.actor = dataclasses.replace(cfg.actor, frame_speech=frame_speech)
    cfg.vae = dataclasses.replace(cfg.vae, temporal_factor=temporal_factor)
    if chunk_frames is not None:
        cfg.chunk_frames = chunk_frames
    return cfg


@torch.no_grad()
def test_zero_initialised_path_leaves_the_model_unchanged():
    torch.manual_seed(0)
    plain = Actor(_cfg(False)).eval()
    given = Actor(_cfg(True)).eval()
    state = plain.state_dict() | {k: v for k, v in given.state_dict().items() if k.startswith("frame_speech_in.")}
    given.load_state_dict(state)
    x, sigma, cond, ident = make_inputs(3)
    assert torch.equal(plain(x, sigma, cond, identity=ident).velocity, given(x, sigma, cond, identity=ident).velocity)
    torch.nn.init.normal_(given.frame_speech_in.weight)
    assert not torch.allclose(plain(x, sigma, cond, identity=ident).velocity,
                              given(x, sigma, cond, identity=ident).velocity)


@torch.no_grad()
def test_each_latent_frame_reads_the_speech_of_its_own_frame():
    for tf, frames in ((1, None), (2, 6)):           # per-frame latents, and latents of 2 frames each
        cfg = _cfg(True, tf, frames)
        torch.manual_seed(0)
        actor = Actor(cfg).eval()
        torch.nn.init.normal_(actor.frame_speech_in.weight)
        f, fl, p = cfg.chunk_frames, cfg.latent_frames, cfg.tokens_per_frame
        x = torch.randn(1, 2, fl, cfg.vae.latent_channels, cfg.latent_hw, cfg.latent_hw)
        speech = torch.randn(1, 2, f, cfg.thinker.speech_feature_size)
        hidden = torch.zeros(1, cfg.cross_chunks + 2, cfg.max_hidden_tokens, cfg.thinker.hidden_size)
        hframes = torch.zeros(hidden.shape[:3], dtype=torch.long)
        cond = ChunkCond(speech, hidden, hframes, torch.zeros(hidden.shape[:3], dtype=torch.bool))
        base = actor._chunk_tokens(x, cond, 0).view(1, 2, -1, cfg.actor.width)
        for frame in range(f):
            bumped = speech.clone()
            bumped[0, 1, frame] += 1.0
            tok = actor._chunk_tokens(x, ChunkCond(bumped, hidden, hframes, cond.hidden_mask), 0)
            changed = (tok.view_as(base) != base).any(-1)[0]                 # [chunk, token]
            video = changed[1, f:].view(fl, p).any(-1)
            want = torch.zeros(fl, dtype=torch.bool)
            if frame % tf == 0 and frame // tf < fl:
                want[frame // tf] = True
            assert torch.equal(video, want), (tf, frame)
            assert not changed[0].any()                                       # the other chunk is untouched


def test_fine_tune_adds_the_path_to_a_checkpoint_without_it(tmp_path):
    from engine_core.checkpoint import read_actor_checkpoint
    from engine_core.train.actor import ActorTrainOptions, train_actor

    data = write_clip_dataset(tmp_path / "data")
    first = tmp_path / "first"
    train_actor(data, first, _cfg(False), options=ActorTrainOptions(steps=2, batch=1), progress=False)
    tuned = tmp_path / "tuned"
    train_actor(data, tuned, _cfg(True), options=ActorTrainOptions(steps=0, batch=1), progress=False, init=first)
    cfg0, start, _ = read_actor_checkpoint(first)
    cfg1, after, _ = read_actor_checkpoint(tuned)
    assert not cfg0.actor.frame_speech and cfg1.actor.frame_speech
    assert set(after) - set(start) == {"frame_speech_in.weight", "frame_speech_in.bias"}
    assert all(torch.equal(start[k], after[k]) for k in start)
    assert not after["frame_speech_in.weight"].any()
    steps = ActorTrainOptions(steps=3, batch=1, lr=1e-2, warmup=1)
    train_actor(data, tmp_path / "more", _cfg(True), options=steps, progress=False, init=first)
    _, more, _ = read_actor_checkpoint(tmp_path / "more")
    assert more["frame_speech_in.weight"].abs().sum() > 0                     # the path does learn


@torch.no_grad()
def test_gain_scales_the_paths_departure_from_silence_and_leaves_silence_alone():
    torch.manual_seed(1)
    cfg = _cfg(True)
    actor = Actor(cfg).eval()
    torch.nn.init.normal_(actor.frame_speech_in.weight)
    torch.nn.init.normal_(actor.frame_speech_in.bias)
    silence, speech = torch.randn(cfg.thinker.speech_feature_size), torch.randn(5, cfg.thinker.speech_feature_size)
    before_sil, before = actor.frame_speech_in(silence), actor.frame_speech_in(speech)
    actor.cfg.actor.frame_speech_gain = 2.5
    actor.fold_frame_speech_gain(silence)
    torch.testing.assert_close(actor.frame_speech_in(silence), before_sil, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(actor.frame_speech_in(speech) - before_sil, 2.5 * (before - before_sil),
                               rtol=1e-4, atol=1e-4)


def test_an_exported_gain_is_folded_in_by_engine_load(tmp_path):
    import pytest

    from engine_core.checkpoint import export_model, read_actor_checkpoint, save_actor
    from engine_core.engine import Engine
    from engine_core.errors import ConfigError

    torch.manual_seed(2)
    cfg = _cfg(True)
    actor = Actor(cfg)
    torch.nn.init.normal_(actor.frame_speech_in.weight)
    save_actor(actor, cfg, tmp_path / "run")
    export_model(tmp_path / "run", tmp_path / "g1", torch.float32)
    export_model(tmp_path / "run", tmp_path / "g3", torch.float32, frame_speech_gain=3.0)
    assert read_actor_checkpoint(tmp_path / "g3")[0].actor.frame_speech_gain == 3.0
    one, three = Engine.load(str(tmp_path / "g1")).actor, Engine.load(str(tmp_path / "g3")).actor
    torch.testing.assert_close(three.frame_speech_in.weight, 3.0 * one.frame_speech_in.weight)
    assert not torch.allclose(three.frame_speech_in.bias, one.frame_speech_in.bias)
    save_actor(Actor(_cfg(False)), _cfg(False), tmp_path / "plain")
    with pytest.raises(ConfigError, match="frame-speech"):
        export_model(tmp_path / "plain", tmp_path / "bad", frame_speech_gain=2.0)


def test_fine_tune_starts_from_a_checkpoint_whatever_its_inference_settings(tmp_path):
    """Gain, sample shift and noise scale shape no weight: `--init` from a checkpoint exported with others loads
    it unchanged (the default preset ships gain 1.5, every earlier checkpoint says 1); the run keeps its own
    settings, and a config that differs in shape still fails."""
    import pytest

    from engine_core.checkpoint import export_model, read_actor_checkpoint
    from engine_core.errors import ConfigError
    from engine_core.train.actor import ActorTrainOptions, train_actor

    data = write_clip_dataset(tmp_path / "data")
    train_actor(data, tmp_path / "first", _cfg(True), options=ActorTrainOptions(steps=2, batch=1), progress=False)
    export_model(tmp_path / "first", tmp_path / "g3", torch.float32, frame_speech_gain=3.0, sample_shift=5.0,
                 noise_scale=0.5)
    cfg = _cfg(True)
    cfg.actor.frame_speech_gain = 1.5
    train_actor(data, tmp_path / "tuned", cfg, options=ActorTrainOptions(steps=0, batch=1), progress=False,
                init=tmp_path / "g3")
    (cfg_start, start, _), (cfg_after, after, _) = (read_actor_checkpoint(tmp_path / d) for d in ("g3", "tuned"))
    assert (cfg_start.actor.frame_speech_gain, cfg_after.actor.frame_speech_gain) == (3.0, 1.5)
    assert (cfg_start.sample_shift, cfg_start.noise_scale) == (5.0, 0.5)
    assert (cfg_after.sample_shift, cfg_after.noise_scale) == (None, 1.0)
    assert all(torch.equal(start[k], after[k]) for k in start)            # the weights, not the gain, carried over
    wider = _cfg(True)
    wider.actor = dataclasses.replace(wider.actor, ffn_size=wider.actor.ffn_size * 2)
    with pytest.raises(ConfigError, match="differs"):
        train_actor(data, tmp_path / "bad", wider, options=ActorTrainOptions(steps=0, batch=1), progress=False,
                    init=tmp_path / "g3")
