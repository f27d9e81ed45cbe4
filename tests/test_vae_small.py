"""SmallVAE: the VideoVAE contract (shapes, dtypes, input forms), normalisation, save/load with the config in
the safetensors metadata, presets, and clear errors for bad frames, bad configs and bad checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine_core.codecs.vae_io import load_small_vae, save_small_vae
from engine_core.codecs.vae import SmallVAE, SmallVAEConfig, VideoVAE, frames_to_tensor, tensor_to_frames
from engine_core.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def vae() -> SmallVAE:
    torch.manual_seed(0)
    v = SmallVAE(SmallVAEConfig.tiny()).eval()
    # non-trivial weights: the zero-initialised residual branches get random values
    with torch.no_grad():
        for p in v.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return v


def test_contract_shapes_and_dtypes(vae: SmallVAE) -> None:
    assert isinstance(vae, VideoVAE)
    assert (vae.latent_channels, vae.spatial_factor, vae.temporal_factor) == (8, 16, 1)
    frames = np.random.default_rng(0).integers(0, 256, (5, 256, 256, 3), dtype=np.uint8)
    z = vae.encode(frames)
    assert z.dtype == torch.float32 and tuple(z.shape) == (5, 8, 16, 16) == vae.latent_shape(5)
    y = vae.decode(z)
    assert y.dtype == torch.float32 and tuple(y.shape) == (5, 3, 256, 256)
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    u8 = vae.decode_frames(z)
    assert u8.dtype == np.uint8 and u8.shape == (5, 256, 256, 3)
    assert np.array_equal(u8, tensor_to_frames(y))
    # per-frame codec: frame i's latent does not depend on the other frames of the batch
    torch.testing.assert_close(vae.encode(frames[2:3]), z[2:3], rtol=1e-4, atol=1e-4)
    # the float-tensor form gives the same latents as the uint8 form
    torch.testing.assert_close(vae.encode(frames_to_tensor(frames)), z)


def test_frame_conversion_round_trip() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 32, 48, 3), dtype=np.uint8)
    x = frames_to_tensor(frames)
    assert tuple(x.shape) == (2, 3, 32, 48) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert np.array_equal(tensor_to_frames(x), frames)
    assert np.array_equal(tensor_to_frames(frames_to_tensor(torch.from_numpy(frames))), frames)


def test_normalisation_uses_stored_stats(vae: SmallVAE) -> None:
    frames = np.random.default_rng(2).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    v = SmallVAE(vae.cfg)
    v.load_state_dict(vae.state_dict())
    raw = v.encode_raw(frames_to_tensor(frames)).detach()
    v.fit_latent_stats(raw)
    z = v.encode(frames)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3)), torch.ones(8), atol=1e-3, rtol=0)
    # decode undoes it: same pixels as decoding the raw latents
    torch.testing.assert_close(v.decode(z), v.decode_raw(raw).clamp(-1, 1).detach(), atol=1e-4, rtol=1e-4)


def test_save_load_round_trip(tmp_path: Path, vae: SmallVAE) -> None:
    vae.latent_mean.fill_(0.25)
    vae.latent_std.fill_(2.0)
    path = save_small_vae(vae, tmp_path / "ckpt")
    assert path == tmp_path / "ckpt" / "vae.safetensors"
    loaded = load_small_vae(tmp_path / "ckpt")
    assert loaded.cfg == vae.cfg
    z = torch.randn(2, 8, 16, 16)
    assert torch.equal(loaded.decode(z), vae.decode(z))
    assert torch.equal(loaded.latent_std, vae.latent_std)
    vae.latent_mean.fill_(0.0)
    vae.latent_std.fill_(1.0)


def test_bad_frames(vae: SmallVAE) -> None:
    with pytest.raises(ValueError, match="uint8"):
        vae.encode(np.zeros((2, 256, 256, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[T,H,W,3\]"):
        vae.encode(np.zeros((256, 256, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\[T,3,H,W\]"):
        vae.encode(torch.zeros(2, 256, 256, 3))
    with pytest.raises(ValueError, match="multiple of 16"):
        vae.encode(np.zeros((1, 100, 256, 3), np.uint8))
    with pytest.raises(ValueError, match="latents must be"):
        vae.decode(torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="numpy array or torch tensor"):
        vae.encode([[1, 2, 3]])  # type: ignore[arg-type]


def test_presets_and_config_errors() -> None:
    d = SmallVAEConfig.default()
    assert d.downsample == 16 and d.latent_channels == 16
    assert SmallVAEConfig.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert SmallVAEConfig.from_name("tiny") == SmallVAEConfig.tiny()
    with pytest.raises(ConfigError, match="unknown SmallVAE preset"):
        SmallVAEConfig.from_name("huge")
    with pytest.raises(ConfigError, match="2\\*\\*len"):
        SmallVAEConfig(downsample=8, channels=(8, 16, 32, 64))
    with pytest.raises(ConfigError, match="one entry per"):
        SmallVAEConfig(enc_blocks=(1, 1))
    with pytest.raises(ConfigError, match="unknown keys"):
        SmallVAEConfig.from_dict({**d.to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="newer"):
        SmallVAEConfig.from_dict({**d.to_dict(), "version": 99})
    old = d.to_dict()
    del old["version"]  # a version-less (older) config is upgraded
    assert SmallVAEConfig.from_dict(old) == d


def test_bad_checkpoints(tmp_path: Path, vae: SmallVAE) -> None:
    with pytest.raises(CheckpointError, match="no SmallVAE checkpoint"):
        load_small_vae(tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_small_vae(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a SmallVAE checkpoint"):
        load_small_vae(foreign)
    # weights of the tiny model under a config that claims the default shape
    wrong = tmp_path / "wrong.safetensors"
    state = {k: v.contiguous() for k, v in vae.state_dict().items()}
    meta = {"format": "xstreamer.small_vae", "config": json.dumps(SmallVAEConfig.default().to_dict())}
    save_file(state, str(wrong), metadata=meta)
    with pytest.raises(CheckpointError, match="do not match"):
        load_small_vae(wrong)


def test_parameter_counts() -> None:
    tiny, default = SmallVAE(SmallVAEConfig.tiny()), SmallVAE(SmallVAEConfig.default())
    assert tiny.num_parameters() == tiny.num_parameters("encoder") + tiny.num_parameters("decoder")
    assert tiny.num_parameters() < 200_000 < default.num_parameters() < 5_000_000
