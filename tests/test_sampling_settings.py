"""Inference-only sampling settings (config.INFERENCE_ONLY: frame_speech_gain, sample_shift, noise_scale):
written by `xstreamer export`, read by Engine.load, used by the session's pyramid; training ignores them."""

from __future__ import annotations

import pytest
import torch

from engine_core.actor.model import Actor
from engine_core.actor.schedule import sigma_schedule
from engine_core.checkpoint import export_model, read_actor_checkpoint, save_actor
from engine_core.config import ModelConfig
from engine_core.engine import Engine
from engine_core.engine.engine import WEIGHTS_DIR
from engine_core.errors import ConfigError


def _model(tmp_path, name: str, **inference) -> Engine:
    cfg = ModelConfig.from_name("tiny")
    run = tmp_path / "run"
    if not run.exists():
        torch.manual_seed(0)
        save_actor(Actor(cfg), cfg, run)
    export_model(run, tmp_path / name, torch.float32, **inference)
    return Engine.load(str(tmp_path / name))


def test_exported_shift_and_noise_scale_reach_the_sessions_sampler(tmp_path):
    plain, tuned = _model(tmp_path, "plain"), _model(tmp_path, "tuned", sample_shift=4.0, noise_scale=0.5)
    assert (tuned.config.sample_shift, tuned.config.noise_scale) == (4.0, 0.5)
    assert plain.config.sample_shift is None and plain.config.inference_shift == plain.config.time_shift
    a, b = plain.open_session(), tuned.open_session()
    try:
        steps = plain.config.steps
        torch.testing.assert_close(a.denoiser.sigmas, sigma_schedule(steps, plain.config.time_shift))
        torch.testing.assert_close(b.denoiser.sigmas, sigma_schedule(steps, 4.0))
        assert b.denoiser.sigmas[1] > a.denoiser.sigmas[1]          # shift > 1: more of the way at high noise
        # the same seeded draw, at half the std
        x_a, x_b = a._enter_chunk(0.0).x, b._enter_chunk(0.0).x
        torch.testing.assert_close(x_b, 0.5 * x_a)
        assert 0.8 < float(x_a.std()) < 1.2
    finally:
        a.close(), b.close()


def test_inference_settings_are_checked():
    tiny = ModelConfig.from_name("tiny")
    with pytest.raises(ConfigError, match="unknown inference settings"):
        tiny.with_inference(temperature=0.5)
    with pytest.raises(ConfigError, match="> 0"):
        tiny.with_inference(noise_scale=0.0)
    with pytest.raises(ConfigError, match="> 0"):
        tiny.with_inference(sample_shift=-1.0)
    with pytest.raises(ConfigError, match="frame-speech path"):
        tiny.with_inference(frame_speech_gain=2.0)          # the tiny Actor has no frame-speech path
    same = tiny.with_inference(sample_shift=None, noise_scale=None)
    assert same == tiny and same is not tiny
    changed = tiny.with_inference(noise_scale=0.7)
    assert changed.noise_scale == 0.7 and changed.trained_dict() == tiny.trained_dict()
    assert changed.to_dict() != tiny.to_dict()


def test_shipped_pixel_model_says_what_the_preset_says():
    """The shipped checkpoint's config (what Engine.load uses) and the `default` preset (what training and the
    docs use) must not drift apart, sampling settings included."""
    shipped = read_actor_checkpoint(WEIGHTS_DIR / "pixel")[0]
    assert shipped.to_dict() == ModelConfig.from_name("pixel").to_dict()
    assert shipped.inference_shift != shipped.time_shift and shipped.noise_scale < 1.0


def test_training_can_draw_noise_levels_from_the_sampler():
    """`sampler_levels`: that share of chunks is trained at exactly the levels the pyramid evaluates; without it
    the draw (and its random stream) is what it always was."""
    from engine_core.actor.schedule import sample_train_sigmas

    levels = sigma_schedule(3, 8.0)[:-1]                                     # 1, 0.94, 0.8
    plain = sample_train_sigmas(2000, 3, torch.Generator().manual_seed(1), 1.0)
    torch.testing.assert_close(sample_train_sigmas(2000, 3, torch.Generator().manual_seed(1), 1.0, levels=levels,
                                                   p_levels=0.0), plain)
    on_level = lambda s: (s[..., None] - levels).abs().min(-1).values < 1e-6       # noqa: E731
    every = sample_train_sigmas(2000, 3, torch.Generator().manual_seed(1), 1.0, levels=levels, p_levels=1.0)
    assert torch.all(on_level(every) | (every == 0)) and 0.05 < float((every == 0).float().mean()) < 0.15
    assert all(float((every == v).float().mean()) > 0.25 for v in levels)   # each level drawn about a third
    half = sample_train_sigmas(2000, 3, torch.Generator().manual_seed(1), 1.0, levels=levels, p_levels=0.5)
    assert 0.4 < float(on_level(half).float().mean()) < 0.5                 # 0.5 of the 90 % that are not clean
    assert float(on_level(plain).float().mean()) < 0.01
