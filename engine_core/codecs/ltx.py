"""LTX-Video VAE adapter (the `paper` preset's codec) over diffusers' `AutoencoderKLLTXVideo`.

Loads local weights only: `LTXVideoVAE(dir)` calls `AutoencoderKLLTXVideo.from_pretrained(dir)` on a directory
holding `config.json` + weights (as written by `save_pretrained`, or the `vae/` folder of an LTX-Video
checkpoint). The released model has 32x spatial and 8x temporal compression and 128 latent channels; frame
counts must be 1 + 8k (the first frame is encoded on its own, causally).

Shapes: frames uint8 [T,H,W,3] or float [T,3,H,W] in [-1,1] -> latents float32 [1 + (T-1)/8, 128, H/32, W/32];
the adapter adds/removes the batch axis and moves time next to channels as diffusers wants ([1,C,T,H,W]).
Latent normalisation is LTX's: z_norm = (z - latents_mean) * scaling_factor / latents_std, per channel,
from the buffers/config stored with the weights. `encode` returns the posterior mode (deterministic).

On CUDA `decode` replays a CUDA graph per latent shape (`cuda_graphs`; a stream's chunks all have one shape): the
decoder launches ~1,000 small kernels, and at the paper's shape on an H200 a chunk's decode took 15.4 ms eagerly
and 8.6 ms replayed (`python -m engine_core.bench.vae_decode`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine_core.codecs.vae import VideoVAE, frames_to_tensor
from engine_core.errors import BackendUnavailableError, CheckpointError


def _ltx_class():
    """diffusers' AutoencoderKLLTXVideo, imported with diffusers' optional transformers integration (PEFT
    loaders) switched off: the VAE does not need it, and some diffusers/transformers pairs fail to import it."""
    import diffusers.utils.import_utils as iu

    iu._transformers_available = False
    iu._peft_available = False
    from diffusers.models.autoencoders.autoencoder_kl_ltx import AutoencoderKLLTXVideo

    return AutoencoderKLLTXVideo


class LTXVideoVAE(VideoVAE):
    """VideoVAE over a local LTX-Video VAE directory (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        decode_timestep: float = 0.0,
        model=None,
    ) -> None:
        if model is not None:                       # an already-built model (see `random`)
            self._init_from(model.to(device).eval(), dtype, decode_timestep)
            return
        path = Path(path)
        if not (path / "config.json").is_file():
            raise BackendUnavailableError(
                f"LTX-Video VAE weights not found: {path} has no config.json (point the `paper` preset at a "
                "local copy of the LTX-Video `vae/` folder; nothing is downloaded)"
            )
        try:
            AutoencoderKLLTXVideo = _ltx_class()
        except ImportError as e:  # pragma: no cover - diffusers is an optional dependency
            raise BackendUnavailableError(
                "the LTX-Video VAE needs `diffusers` (pip install xstreamer[ltx])"
            ) from e
        try:
            self.model = AutoencoderKLLTXVideo.from_pretrained(
                str(path), torch_dtype=dtype, local_files_only=True
            )
        except (OSError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"cannot load the LTX-Video VAE from {path}: {e}") from e
        self._init_from(self.model.to(device).eval(), dtype, decode_timestep)

    def _init_from(self, model, dtype: torch.dtype, decode_timestep: float) -> None:
        self.model = model
        self.dtype = dtype
        self.decode_timestep = decode_timestep
        self.scaling_factor = float(model.config.scaling_factor)
        self.cuda_graphs = True         # on CUDA, decode replays one graph per latent shape
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def random(cls, device: str | torch.device = "cpu", dtype: torch.dtype = torch.bfloat16, **config) -> LTXVideoVAE:
        """Random weights at the LTX-Video VAE's published shape (diffusers' default config), or at `config`:
        for timing at full shape (`xstreamer bench --random-weights`) and tests. Frames are noise."""
        AutoencoderKLLTXVideo = _ltx_class()

        with torch.device(device):
            model = AutoencoderKLLTXVideo(**config).to(dtype)
        return cls("", device=device, dtype=dtype, model=model)

    @property
    def latent_channels(self) -> int:
        return int(self.model.config.latent_channels)

    @property
    def spatial_factor(self) -> int:
        return int(self.model.spatial_compression_ratio)

    @property
    def temporal_factor(self) -> int:
        return int(self.model.temporal_compression_ratio)

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.model.latents_mean.device

    def to(self, device: str | torch.device) -> LTXVideoVAE:
        """Move the weights to `device`."""
        self.model.to(device)
        return self

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.model.latents_mean.view(1, -1, 1, 1).float()  # [1,C,1,1]
        std = self.model.latents_std.view(1, -1, 1, 1).float()
        return mean, std

    @torch.inference_mode()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Frames [T,...] (T = 1 + 8k) -> normalised latents float32 [T',C,H/32,W/32], T' = 1 + (T-1)/8."""
        x = frames_to_tensor(frames, self.device, self.dtype)  # [T,3,H,W]
        self.num_latent_frames(x.shape[0])  # validates 1 + 8k
        sf = self.spatial_factor
        if x.shape[-1] % sf or x.shape[-2] % sf:
            raise ValueError(f"frame size {x.shape[-2]}x{x.shape[-1]} must be a multiple of {sf}")
        video = x.permute(1, 0, 2, 3).unsqueeze(0)  # [1,3,T,H,W]
        z = self.model.encode(video).latent_dist.mode()  # [1,C,T',h,w]
        z = z[0].permute(1, 0, 2, 3).float()  # [T',C,h,w]
        mean, std = self._stats()
        return ((z - mean) * self.scaling_factor / std).contiguous()

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [T',C,h,w] -> frames float32 [1 + 8(T'-1), 3, h*32, w*32] in [-1,1]."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"latents must be [T',{self.latent_channels},h,w]; got {tuple(latents.shape)}")
        mean, std = self._stats()
        z = latents.to(self.device).float() * std / self.scaling_factor + mean  # [T',C,h,w]
        z = z.permute(1, 0, 2, 3).unsqueeze(0).to(self.dtype)  # [1,C,T',h,w]
        if self.cuda_graphs and z.is_cuda:
            return self._replay(z)
        return self._decode(z)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised latents [1,C,T',h,w] -> frames float32 [T,3,H,W] in [-1,1]."""
        temb = None
        if self.model.config.timestep_conditioning:
            temb = torch.full((1,), self.decode_timestep, device=z.device, dtype=self.dtype)
        video = self.model.decode(z, temb).sample  # [1,3,T,H,W]
        return video[0].permute(1, 0, 2, 3).float().clamp_(-1.0, 1.0).contiguous()  # [T,3,H,W]

    def _replay(self, z: torch.Tensor) -> torch.Tensor:
        """`_decode` from the CUDA graph of z's shape, captured at its first decode (two eager warm-ups, then the
        capture, on a side stream; thread-local capture, so other threads keep using the GPU meanwhile)."""
        key = tuple(z.shape)
        if key not in self._graphs:
            static = z.clone()
            side = torch.cuda.Stream(z.device)
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._decode(static)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=side, capture_error_mode="thread_local"):
                    out = self._decode(static)
            torch.cuda.current_stream().wait_stream(side)
            self._graphs[key] = (graph, static, out)
        graph, static, out = self._graphs[key]
        static.copy_(z)
        graph.replay()
        return out.clone()
