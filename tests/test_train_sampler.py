"""WindowSampler (the Actor's training windows, gathered from all clips at once) against a loop that follows its
definition sample by sample and chunk by chunk."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine_core.config import ModelConfig
from engine_core.train.data import ClipTensors, WindowSampler


def _cfg(preset: str) -> ModelConfig:
    """A preset; "tiny-tf2": tiny with a temporal codec (factor 2, 5-frame chunks = 3 latent frames)."""
    cfg = ModelConfig.from_name(preset.split("-")[0])
    if preset.endswith("-tf2"):
        cfg.vae = dataclasses.replace(cfg.vae, temporal_factor=2)
        cfg.chunk_frames = 5
    return cfg


def _clip(gen: torch.Generator, frames: int, tokens: int, cfg: ModelConfig) -> ClipTensors:
    c, hw, d = cfg.vae.latent_channels, cfg.latent_hw, cfg.thinker.hidden_size
    tf, f = cfg.vae.temporal_factor, cfg.chunk_frames
    n_lat = frames // f * cfg.latent_frames if tf > 1 else frames
    hf = torch.sort(torch.randint(0, frames, (tokens,), generator=gen)).values
    targets = torch.full((frames,), -100, dtype=torch.long)
    targets[hf] = torch.randint(0, 50, (tokens,), generator=gen)
    return ClipTensors(latents=torch.randn(n_lat, c, hw, hw, generator=gen).half(),
                       speech=torch.randn(frames, cfg.thinker.speech_feature_size, generator=gen),
                       hidden=torch.randn(tokens, d, generator=gen), hidden_frames=hf, text_targets=targets,
                       identity=torch.randn(c, hw, hw, generator=gen), mouth=(torch.rand(hw, hw, generator=gen) > 0.8).float())


def _reference(clips: list[ClipTensors], cfg: ModelConfig, batch: int, gen: torch.Generator) -> dict:
    """The definition, one sample and one chunk at a time (same random draws in the same order)."""
    f, k, r, m = cfg.chunk_frames, cfg.train_chunks, cfg.cross_chunks, cfg.max_hidden_tokens
    tf, fl = cfg.vae.temporal_factor, cfg.latent_frames
    first = int(torch.randint(0, 65, (1,), generator=gen))
    out = {key: [] for key in ("x0", "speech", "hidden", "hidden_frames", "hidden_mask", "text_targets", "identity", "mouth")}
    for _ in range(batch):
        c = clips[int(torch.randint(0, len(clips), (1,), generator=gen))]
        t = c.speech.shape[0]
        if tf > 1:      # a temporal codec: windows on the chunk grid; the clip holds Fl latents per whole chunk
            start = f * int(torch.randint(0, max(1, t // f - k + 1), (1,), generator=gen))
            lat_idx = (torch.arange(k * fl) + start // f * fl).clamp(max=c.latents.shape[0] - 1)
        else:
            start = int(torch.randint(0, max(1, t - k * f + 1), (1,), generator=gen))
            lat_idx = (torch.arange(k * fl) + start).clamp(max=c.latents.shape[0] - 1)
        idx = (torch.arange(k * f) + start).clamp(max=t - 1)
        out["x0"].append(c.latents[lat_idx].float().view(k, fl, *c.latents.shape[1:]))
        out["speech"].append(c.speech[idx].view(k, f, -1))
        out["text_targets"].append(c.text_targets[idx].view(k, f))
        h = torch.zeros(r + k, m, cfg.thinker.hidden_size)
        fr = torch.zeros(r + k, m, dtype=torch.long)
        mk = torch.zeros(r + k, m, dtype=torch.bool)
        for j in range(-r, k):
            inside = (c.hidden_frames >= start + j * f) & (c.hidden_frames < start + (j + 1) * f)
            sel = inside.nonzero().flatten()[:m]
            h[j + r, :len(sel)] = c.hidden[sel]
            fr[j + r, :len(sel)] = c.hidden_frames[sel] - start + first * f
            mk[j + r, :len(sel)] = True
        out["hidden"].append(h), out["hidden_frames"].append(fr), out["hidden_mask"].append(mk)
        out["identity"].append(c.identity), out["mouth"].append(c.mouth)
    return {key: torch.stack(v) for key, v in out.items()} | {"first_chunk": first}


@pytest.mark.parametrize("preset", ["tiny", "default", "tiny-tf2"])
def test_sampler_equals_the_per_sample_definition(preset):
    cfg = _cfg(preset)
    g = torch.Generator().manual_seed(3)
    f, k = cfg.chunk_frames, cfg.train_chunks
    # long clips, a clip shorter than one window (clamped), one without tokens, one with more tokens per chunk
    # than there are slots (cut at M), one whose tokens all sit in its first frames
    clips = [_clip(g, 200, 40, cfg), _clip(g, k * f - 5, 6, cfg), _clip(g, 90, 0, cfg),
             _clip(g, 3 * k * f, 20 * cfg.max_hidden_tokens, cfg), _clip(g, 120, 30, cfg)]
    clips[4].hidden_frames = torch.sort(torch.randint(0, 4, (30,), generator=g)).values
    sampler = WindowSampler(clips, cfg)
    for seed in range(6):
        got = sampler.sample(24, torch.Generator().manual_seed(seed))
        want = _reference(clips, cfg, 24, torch.Generator().manual_seed(seed))
        assert got["first_chunk"] == want["first_chunk"]
        for key in want:
            if key != "first_chunk":
                value = got[key].float() if key == "x0" else got[key]       # x0 comes as float16 (cast on the device)
                assert value.shape == want[key].shape, key
                assert torch.equal(value, want[key]), key
    full = sampler.sample(64, torch.Generator().manual_seed(0))["hidden_mask"].sum(-1)
    assert full.max() == cfg.max_hidden_tokens and full.min() == 0      # both edge cases were drawn
    assert sampler.sample(2, g)["x0"].dtype == torch.float16


def test_sampler_needs_clips():
    with pytest.raises(ValueError, match="no clips"):
        WindowSampler([], ModelConfig.from_name("tiny"))


def test_temporal_codec_latents_are_whole_chunks_encoded_alone(tmp_path):
    """With an LTX codec (1 + 8k frames per encode) a clip is encoded chunk by chunk, as the engine decodes it, and
    every training window's latents are those of the chunks its speech comes from."""
    pytest.importorskip("diffusers")
    import numpy as np

    from engine_core.codecs.ltx import LTXVideoVAE
    from engine_core.thinker.toy import ToyThinker
    from engine_core.train.data import load_clip_tensors
    from tests.test_ltx_adapter import _tiny_ltx
    from tests.test_train_actor import write_clip_dataset

    _tiny_ltx().save_pretrained(tmp_path / "ltx")
    vae = LTXVideoVAE(tmp_path / "ltx")
    cfg = ModelConfig.from_name("tiny")
    cfg.vae = dataclasses.replace(cfg.vae, kind="ltx", temporal_factor=8, spatial_factor=32, latent_channels=8)
    cfg.chunk_frames, cfg.train_chunks = 9, 2                                    # 9 = 1 + 8: 2 latent frames
    clip_dir = write_clip_dataset(tmp_path / "data", frames_n=31) / "clips" / "000000"
    clip = load_clip_tensors(clip_dir, cfg, vae, ToyThinker(cfg.thinker.hidden_size, 64))
    frames = np.load(clip_dir / "frames.npz")["frames"]
    assert clip.latents.shape[0] == 3 * 2 and clip.speech.shape[0] == 31          # 3 whole chunks; 4 frames left
    for j in range(3):
        torch.testing.assert_close(clip.latents[2 * j:2 * j + 2].float(), vae.encode(frames[9 * j:9 * j + 9]),
                                   rtol=2e-3, atol=2e-3)                          # stored as float16
    got = WindowSampler([clip], cfg).sample(16, torch.Generator().manual_seed(0))
    for i in range(16):
        start = [j for j in range(3) if torch.equal(got["speech"][i, 0], clip.speech[9 * j:9 * j + 9])]
        assert start and start[0] <= 1                                            # on the grid, room for 2 chunks
        assert torch.equal(got["x0"][i].reshape(4, *clip.latents.shape[1:]), clip.latents[2 * start[0]:2 * start[0] + 4])
