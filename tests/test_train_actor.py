"""Diffusion-forcing training of the tiny Actor: it overfits one clip, resumes, logs and plots; the CLI works."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine_core.engine import Engine
from engine_core.train.actor import ActorTrainOptions, train_actor
from engine_core.train.plot import plot_loss

pytestmark = pytest.mark.engine


def write_clip_dataset(root: Path, frames_n: int = 15) -> Path:
    """One synthetic clip (a moving blob that grows with the audio's loudness) in the corpus layout."""
    clip = root / "clips" / "000000"
    clip.mkdir(parents=True)
    yy, xx = np.mgrid[0:256, 0:256]
    t = np.arange(frames_n * 882) / 22050.0
    amp = 0.5 * (1 + np.sin(2 * np.pi * 2 * t))
    audio = (0.3 * amp * np.sin(2 * np.pi * 180 * t) * 32767).astype(np.int16)
    frames = np.zeros((frames_n, 256, 256, 3), np.uint8)
    for i in range(frames_n):
        r = 30 + 30 * amp[i * 882]
        blob = ((xx - 128 - 3 * i) ** 2 + (yy - 128) ** 2) < r * r
        frames[i, ..., 0] = 40 + yy // 2
        frames[i, ..., 2] = 200 - xx // 2
        frames[i][blob] = (230, 190, 150)
    np.savez_compressed(clip / "frames.npz", frames=frames)
    with wave.open(str(clip / "audio.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050)
        w.writeframes(audio.tobytes())
    words = [["hello", 0.0, 0.2], ["world", 0.25, 0.5]]
    (clip / "meta.json").write_text(json.dumps({"text": "hello world", "words": words}))
    cv2.imwrite(str(clip / "portrait.png"), frames[0][..., ::-1])
    (root / "manifest.json").write_text(json.dumps(
        {"version": 1, "clips": [{"id": "000000", "dir": "clips/000000", "split": "train", "frames": frames_n}]}))
    return root



def test_tiny_actor_overfits_one_clip_and_resumes(tmp_path):
    data = write_clip_dataset(tmp_path / "data")
    out = tmp_path / "run"
    # fresh noise and noise levels every step (no fixed batch): the loss still falls >= 10x on one clip
    opt = ActorTrainOptions(steps=250, batch=1, lr=3e-3, warmup=10, log_every=5, save_every=1000,
                            hidden_dropout=0.0, text_loss_weight=0.0)
    res = train_actor(data, out, "tiny", options=opt, progress=False)
    assert res["step"] == 250 and res["done"]
    rows = [json.loads(x) for x in (out / "loss.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 1 and rows[-1]["step"] == 250
    last = np.mean([r["loss"] for r in rows[-4:]])
    assert last < res["first_loss"] / 10, (last, res)
    png = plot_loss(out / "loss.jsonl")
    assert cv2.imread(str(png)) is not None
    # resume: continues from step 150 with the saved optimiser state
    opt2 = ActorTrainOptions(**{**opt.__dict__, "steps": 260})
    res2 = train_actor(data, out, "tiny", options=opt2, resume=True, progress=False)
    assert res2["step"] == 260 and res2["first_loss"] == res["first_loss"]
    rows = [json.loads(x) for x in (out / "loss.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 260 and len({r["step"] for r in rows}) == len(rows)
    # the output directory is a model directory the engine loads
    eng = Engine.load(str(out))
    s = eng.open_session()
    try:
        c = s.next_chunk()
        assert c.frames.shape == (5, 256, 256, 3)
    finally:
        s.close()


def test_max_minutes_budget_stops_and_saves(tmp_path):
    data = write_clip_dataset(tmp_path / "data")
    out = tmp_path / "run"
    res = train_actor(data, out, "tiny", max_minutes=0.0, options=ActorTrainOptions(steps=1000, batch=1),
                      progress=False)
    assert res["step"] == 0 and not res["done"]
    assert (out / "train_state.pt").is_file() and (out / "actor.safetensors").is_file()


def test_train_cli(tmp_path, capsys):
    from xstreamer.cli import main

    data = write_clip_dataset(tmp_path / "data")
    rc = main(["train", "--what", "actor", "--data", str(data), "--preset", "tiny", "--out", str(tmp_path / "o"),
               "--steps", "3", "--batch", "1", "--device", "cpu", "--no-progress"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["step"] == 3 and Path(res["plot"]).is_file()


def test_bad_dataset_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        train_actor(tmp_path, tmp_path / "o", "tiny", options=ActorTrainOptions(steps=1), progress=False)


def test_train_cli_vae_dispatch(tmp_path, capsys):
    """`--what vae` reaches the codecs helper's train_vae with the same options."""
    from xstreamer.cli import main

    data = write_clip_dataset(tmp_path / "data")
    rc = main(["train", "--what", "vae", "--data", str(data), "--preset", "tiny", "--out", str(tmp_path / "v"),
               "--steps", "2", "--batch", "2", "--device", "cpu", "--no-progress"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["step"] == 2 and (tmp_path / "v" / "vae.safetensors").is_file()


def test_diffusion_forcing_noise_levels_are_per_chunk():
    from engine_core.actor.schedule import sample_train_sigmas

    g = torch.Generator().manual_seed(0)
    s = sample_train_sigmas(2000, 3, g, p_pyramid=0.0)
    assert s.shape == (2000, 3) and (s >= 0).all() and (s <= 1).all()
    assert ((s[:, 0] - s[:, 1]).abs() > 1e-3).float().mean() > 0.85        # chunks of a sample differ
    assert abs(float(torch.corrcoef(s.T)[0, 1])) < 0.1                      # ... independently
    assert 0.05 < float((s == 0).float().mean()) < 0.15                     # some clean context chunks
    rising = sample_train_sigmas(200, 3, g, p_pyramid=1.0)
    assert (rising[:, 1:] >= rising[:, :-1]).all()


def test_mouth_cells_and_mouth_weighted_loss():
    from engine_core.actor.model import Actor
    from engine_core.config import ModelConfig
    from engine_core.train.actor import training_loss
    from engine_core.train.data import mouth_cells

    cfg = ModelConfig.from_name("tiny")                      # 16x16 latent grid, 16 px per cell
    m = mouth_cells([100, 170, 150, 190], cfg)
    rows, cols = np.nonzero(m.numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (9, 12, 5, 10)  # the box's cells + one around
    assert mouth_cells(None, cfg).sum() == 0
    actor = Actor(cfg)
    torch.manual_seed(0)
    k, fl, c, h = cfg.train_chunks, cfg.latent_frames, cfg.vae.latent_channels, cfg.latent_hw
    b = {"x0": torch.zeros(1, k, fl, c, h, h), "speech": torch.zeros(1, k, cfg.chunk_frames, 80),
         "hidden": torch.zeros(1, cfg.cross_chunks + k, cfg.max_hidden_tokens, cfg.thinker.hidden_size),
         "hidden_frames": torch.zeros(1, cfg.cross_chunks + k, cfg.max_hidden_tokens, dtype=torch.long),
         "hidden_mask": torch.zeros(1, cfg.cross_chunks + k, cfg.max_hidden_tokens, dtype=torch.bool),
         "text_targets": torch.full((1, k, cfg.chunk_frames), -100), "identity": torch.zeros(1, c, h, h),
         "mouth": m[None], "first_chunk": 0}
    # an Actor that outputs 0 against latents that are large only on the mouth: the error sits on the mouth,
    # so weighing the mouth raises the loss (and the same batch without a mouth mask gives the plain loss)
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
    b["x0"] = 10.0 * m.expand(1, k, fl, c, h, h).clone()
    losses = {}
    for w in (0.0, 6.0):
        opt = ActorTrainOptions(hidden_dropout=0.0, text_loss_weight=0.0, mouth_weight=w)
        losses[w], _ = training_loss(actor, b, torch.Generator().manual_seed(1), opt, torch.device("cpu"))
    assert losses[6.0] > losses[0.0] * 2
    b["mouth"] = torch.zeros_like(b["mouth"])
    opt = ActorTrainOptions(hidden_dropout=0.0, text_loss_weight=0.0, mouth_weight=6.0)
    plain, _ = training_loss(actor, b, torch.Generator().manual_seed(1), opt, torch.device("cpu"))
    assert torch.allclose(plain, losses[0.0])


def test_fine_tune_from_init_weights_and_wrong_config(tmp_path):
    from engine_core.checkpoint import read_actor_checkpoint
    from engine_core.config import ModelConfig
    from engine_core.errors import ConfigError

    data = write_clip_dataset(tmp_path / "data")
    first = tmp_path / "first"
    opt = ActorTrainOptions(steps=3, batch=1, log_every=1, save_every=1000)
    train_actor(data, first, "tiny", options=opt, progress=False)
    _, start, _ = read_actor_checkpoint(first)
    # zero steps from --init: the saved weights are exactly the initial ones
    tuned = tmp_path / "tuned"
    train_actor(data, tuned, "tiny", options=ActorTrainOptions(steps=0, batch=1), progress=False, init=first)
    _, same, _ = read_actor_checkpoint(tuned)
    assert all(torch.equal(start[k], same[k]) for k in start)
    other = ModelConfig.from_name("tiny")
    other.actor.layers = 3
    with pytest.raises(ConfigError, match="differs"):
        train_actor(data, tmp_path / "bad", other, options=ActorTrainOptions(steps=1, batch=1), progress=False,
                    init=first)


def test_a_model_without_text_head_trains_on_clips_without_hidden_states(tmp_path):
    from engine_core.config import ModelConfig

    data = write_clip_dataset(tmp_path / "data")
    cfg = ModelConfig.from_name("tiny")
    cfg.thinker.text_vocab = 0                              # as the default preset: no text head
    res = train_actor(data, tmp_path / "run", cfg, options=ActorTrainOptions(steps=2, batch=1), progress=False)
    assert res["step"] == 2 and np.isfinite(res["loss"])


def test_export_writes_a_loadable_half_precision_model_dir(tmp_path, capsys):
    from safetensors import safe_open

    from engine_core.checkpoint import read_actor_checkpoint
    from xstreamer.cli import main

    data = write_clip_dataset(tmp_path / "data")
    run = tmp_path / "run"
    train_actor(data, run, "tiny", options=ActorTrainOptions(steps=2, batch=1), progress=False)
    assert main(["export", str(run), "--out", str(tmp_path / "ship")]) == 0
    assert "actor.safetensors" in capsys.readouterr().out
    cfg0, full, meta0 = read_actor_checkpoint(run)
    cfg1, half, meta1 = read_actor_checkpoint(tmp_path / "ship")
    assert cfg1 == cfg0 and meta1["step"] == meta0["step"] == "2"
    assert set(half) == set(full) and all(v.dtype == torch.float16 for v in half.values())
    assert all(torch.equal(half[k], full[k].half()) for k in full)
    with safe_open(str(tmp_path / "ship" / "actor.safetensors"), "pt") as f:
        assert (tmp_path / "ship" / "actor.safetensors").stat().st_size < 0.6 * (run / "actor.safetensors").stat().st_size
        assert f.metadata()["format"] == "xstreamer.actor"
    engine = Engine.load(str(tmp_path / "ship"))
    assert next(engine.actor.parameters()).dtype == torch.float32        # loaded at the engine's dtype
