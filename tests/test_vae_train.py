"""train_vae: a tiny SmallVAE overfits a few flat-shaded frames on CPU; resume continues from the saved step;
the JSONL log, the exported weights and encode_dataset on a corpus-format directory."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine_core.codecs.vae_io import load_small_vae, save_small_vae
from engine_core.codecs.vae import SmallVAE, SmallVAEConfig
from engine_core.codecs.vae_losses import ssim
from engine_core.train.vae import VAETrainOptions, encode_dataset, load_frames, train_vae

pytestmark = pytest.mark.engine


def _cartoon(seed: int) -> np.ndarray:
    """A flat-shaded 256x256 'character': coloured background, head, eyes, mouth."""
    rng = np.random.default_rng(seed)
    img = np.empty((256, 256, 3), np.uint8)
    img[:] = rng.integers(80, 250, 3)
    cv2.ellipse(
        img,
        (128 + int(rng.integers(-10, 10)), 125),
        (55, 70),
        0,
        0,
        360,
        tuple(int(v) for v in rng.integers(90, 255, 3)),
        -1,
        cv2.LINE_AA,
    )
    cv2.rectangle(img, (60, 215), (196, 256), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    for ex in (105, 151):
        cv2.circle(img, (ex, 112), 8, (30, 30, 30), -1, cv2.LINE_AA)
    cv2.ellipse(img, (128, 158), (18, int(rng.integers(2, 12))), 0, 0, 360, (150, 50, 60), -1, cv2.LINE_AA)
    return img



@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.stack([_cartoon(s) for s in range(4)])  # [4,256,256,3]


@pytest.fixture(scope="module")
def small_frames(frames: np.ndarray) -> np.ndarray:
    """The same frames at 64x64 (SmallVAE is fully convolutional): keeps the CPU overfit test fast."""
    return np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in frames])


def _write_corpus(root: Path, frames: np.ndarray) -> None:
    clips = []
    for i, split in enumerate(("train", "heldout_identity")):
        d = root / "clips" / f"{i:06d}"
        d.mkdir(parents=True)
        np.savez_compressed(d / "frames.npz", frames=frames[2 * i : 2 * i + 2])
        clips.append({"id": f"{i:06d}", "dir": f"clips/{i:06d}", "split": split, "frames": 2})
    (root / "manifest.json").write_text(json.dumps({"version": 1, "size": 256, "clips": clips}))


def test_tiny_vae_overfits_and_resumes(tmp_path: Path, small_frames: np.ndarray) -> None:
    frames = small_frames
    torch.manual_seed(0)
    opt = VAETrainOptions(lr=3e-3, warmup=5, latent_noise=0.0, log_every=5, save_every=1000)
    out = tmp_path / "run"
    res1 = train_vae(None, out, "tiny", "cpu", steps=100, batch=4, frames=frames, options=opt, progress=False)
    assert res1["step"] == 100
    log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(5, 105, 5))
    assert {"step", "loss", "l1", "ssim", "lr", "time"} <= set(log[0])
    first = log[0]["loss"]
    # resume: continues from step 100 (not 0) up to 400, with the optimiser state
    res2 = train_vae(None, out, "tiny", "cpu", steps=400, batch=4, frames=frames, options=opt, progress=False)
    assert res2["step"] == 400
    log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(5, 405, 5))  # no restart from step 0
    last = np.mean([r["loss"] for r in log[-3:]])
    assert last < first / 4, f"loss fell only from {first:.4f} to {last:.4f}"
    # the exported weights load and reconstruct the training frames well above chance
    vae = load_small_vae(out / "vae.safetensors")
    assert vae.cfg == SmallVAEConfig.tiny()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    rec = vae.decode(vae.encode(frames))
    assert float(ssim(rec, x)) > 0.6
    # stored latent statistics make encoded latents roughly standardised
    z = vae.encode(frames)
    assert abs(float(z.mean())) < 0.5 and 0.5 < float(z.std()) < 2.0


def test_budget_stops_early_and_state_is_saved(tmp_path: Path, small_frames: np.ndarray) -> None:
    res = train_vae(
        None,
        tmp_path,
        "tiny",
        "cpu",
        max_minutes=0.0,
        steps=1000,
        batch=2,
        frames=small_frames,
        progress=False,
    )
    assert (
        res["step"] == 0
        and (tmp_path / "train_state.pt").is_file()
        and (tmp_path / "vae.safetensors").is_file()
    )


def test_corpus_directory_and_encode_dataset(tmp_path: Path, frames: np.ndarray) -> None:
    data = tmp_path / "corpus"
    _write_corpus(data, frames)
    got = load_frames(data, ("train",), frame_stride=1, progress=False)
    assert np.array_equal(got, frames[:2])  # only the train split
    with pytest.raises(ValueError, match="no clips"):
        load_frames(data, ("nope",), progress=False)
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_frames(tmp_path / "empty", progress=False)
    res = train_vae(
        data,
        tmp_path / "run",
        "tiny",
        "cpu",
        steps=3,
        batch=2,
        progress=False,
        options=VAETrainOptions(frame_stride=1),
    )
    meta = encode_dataset(data, res["vae"], tmp_path / "lat", progress=False)
    doc = json.loads(meta.read_text())
    assert doc["clips"] == 2 and doc["config"]["latent_channels"] == 8
    lat = np.load(tmp_path / "lat" / "clips" / "000001" / "latents.npy")
    assert lat.dtype == np.float16 and lat.shape == (2, 8, 16, 16)
    vae = load_small_vae(res["vae"])
    np.testing.assert_allclose(lat, vae.encode(frames[2:4]).numpy(), atol=2e-2, rtol=1e-2)
