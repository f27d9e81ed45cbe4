"""GLM-4-Voice's speech decoder, part 2: 80-bin mel -> 22,050 Hz waveform with the HiFT vocoder (our implementation
of the published architecture, CosyVoice's `HiFTGenerator`: a neural source-filter HiFi-GAN ending in an inverse
STFT; loading the published `hift.pt`).

    mel [1, 80, T] -> F0 per frame (5 conv + ELU, a linear head, |.|) -> a harmonic source at 22,050 Hz (F0 and
    8 harmonics, sines with random phases, voiced where F0 > 10 Hz, noise elsewhere; mixed by a linear + tanh)
    -> its STFT (n_fft 16, hop 4) joins the mel's upsampling path (conv_pre, 2 transposed convs x8, multi-receptive
    ResBlocks with Snake activations) -> conv_post -> magnitude (exp) and phase (sin) -> inverse STFT: 256 T samples

Weight-normalised convolutions keep the published `weight_g` / `weight_v` parameters (PyTorch's newer
`parametrizations.weight.original0/1` names are read too). The source's random phases and noise come from `gen`
(seeded per stream), not the global generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from sdk.protocol.constants import SAMPLE_RATE


@dataclass
class HiftConfig:
    """The `hift` section of the published config.yaml (HiFTGenerator + ConvRNNF0Predictor)."""

    in_channels: int = 80
    base_channels: int = 512
    nb_harmonics: int = 8
    sampling_rate: int = SAMPLE_RATE              # the published 22,050 Hz (the media clock's too)
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: list[int] = field(default_factory=lambda: [8, 8])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [16, 16])
    n_fft: int = 16
    hop_len: int = 4
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    source_resblock_kernel_sizes: list[int] = field(default_factory=lambda: [7, 11])
    source_resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 2)
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_cond_channels: int = 512
    f0_num_class: int = 1

    @property
    def upsample(self) -> int:
        """Samples per mel frame."""
        return int(np.prod(self.upsample_rates)) * self.hop_len


class WNConv(nn.Module):
    """A weight-normalised (transposed) 1-D convolution: weight = g * v / |v| (norm over all but dim 0)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 transposed: bool = False) -> None:
        super().__init__()
        shape = (cin, cout, k) if transposed else (cout, cin, k)
        self.weight_v = nn.Parameter(torch.randn(shape) * 0.01)
        self.weight_g = nn.Parameter(self.weight_v.detach().flatten(1).norm(dim=1).view(-1, 1, 1).clone())
        self.bias = nn.Parameter(torch.zeros(cout))
        self.stride, self.padding, self.dilation, self.transposed = stride, padding, dilation, transposed
        self._register_load_state_dict_pre_hook(self._new_names)

    @staticmethod
    def _new_names(state, prefix, *args) -> None:
        for old, new in (("parametrizations.weight.original0", "weight_g"), ("parametrizations.weight.original1",
                                                                              "weight_v")):
            if prefix + old in state:
                state[prefix + new] = state.pop(prefix + old)

    def weight(self) -> torch.Tensor:
        """g * v / |v|, made again only when g or v changed (inference reads it as a plain weight)."""
        v, g = self.weight_v, self.weight_g
        if torch.is_grad_enabled():
            return g * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))
        key = (v._version, g._version, v.data_ptr(), g.data_ptr())
        if getattr(self, "_key", None) != key:
            self._w = g * v / v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))
            self._key = key
        return self._w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose1d(x, self.weight(), self.bias, self.stride, self.padding)
        return F.conv1d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation)


class Snake(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha[None, :, None]
        return x + (1.0 / (a + 1e-9)) * torch.sin(x * a) ** 2


class ResBlock(nn.Module):
    def __init__(self, ch: int, k: int, dilations: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(WNConv(ch, ch, k, 1, (k * d - d) // 2, d) for d in dilations)
        self.convs2 = nn.ModuleList(WNConv(ch, ch, k, 1, (k - 1) // 2) for _ in dilations)
        self.activations1 = nn.ModuleList(Snake(ch) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(ch) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = x + c2(a2(c1(a1(x))))
        return x


class F0Predictor(nn.Module):
    def __init__(self, c: HiftConfig) -> None:
        super().__init__()
        cc = c.f0_cond_channels
        layers: list[nn.Module] = []
        for i in range(5):
            layers += [WNConv(c.in_channels if i == 0 else cc, cc, 3, 1, 1), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cc, c.f0_num_class)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, 80, T] -> F0 in Hz [B, T]."""
        return self.classifier(self.condnet(mel).transpose(1, 2)).squeeze(-1).abs()


class Hift(nn.Module):
    def __init__(self, c: HiftConfig) -> None:
        super().__init__()
        self.c = c
        self.f0_predictor = F0Predictor(c)
        self.m_source = nn.Module()
        self.m_source.l_linear = nn.Linear(c.nb_harmonics + 1, 1)
        bc = c.base_channels
        self.conv_pre = WNConv(c.in_channels, bc, 7, 1, 3)
        self.ups = nn.ModuleList(WNConv(bc // 2 ** i, bc // 2 ** (i + 1), k, u, (k - u) // 2, transposed=True)
                                 for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)))
        down = np.cumprod([1] + c.upsample_rates[::-1][:-1])[::-1]
        self.source_downs, self.source_resblocks = nn.ModuleList(), nn.ModuleList()
        for i, (u, k, d) in enumerate(zip(down, c.source_resblock_kernel_sizes, c.source_resblock_dilation_sizes)):
            ch, u = bc // 2 ** (i + 1), int(u)
            self.source_downs.append(nn.Conv1d(c.n_fft + 2, ch, 1, 1) if u == 1
                                     else nn.Conv1d(c.n_fft + 2, ch, u * 2, u, padding=u // 2))
            self.source_resblocks.append(ResBlock(ch, k, d))
        self.resblocks = nn.ModuleList(ResBlock(bc // 2 ** (i + 1), k, d) for i in range(len(self.ups))
                                       for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes))
        self.conv_post = WNConv(bc // 2 ** len(self.ups), c.n_fft + 2, 7, 1, 3)
        self.register_buffer("window", torch.hann_window(c.n_fft, periodic=True), persistent=False)

    def source(self, f0: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """F0 [B, T] (per mel frame) -> the excitation [B, 1, T * upsample]."""
        c = self.c
        f0 = f0.float().repeat_interleave(c.upsample, dim=1)[:, None]                         # [B, 1, S]
        harmonics = torch.arange(1, c.nb_harmonics + 2, device=f0.device, dtype=torch.float32)[None, :, None]
        theta = 2 * np.pi * (torch.cumsum(f0 * harmonics / c.sampling_rate, dim=-1) % 1)      # [B, H+1, S]
        phase = (torch.rand(f0.shape[0], c.nb_harmonics + 1, 1, generator=gen) * 2 - 1) * np.pi
        phase[:, 0] = 0
        uv = (f0 > c.nsf_voiced_threshold).float()
        noise_amp = uv * c.nsf_sigma + (1 - uv) * c.nsf_alpha / 3
        noise = torch.randn(theta.shape, generator=gen).to(f0.device)
        sines = c.nsf_alpha * torch.sin(theta + phase.to(f0.device)) * uv + noise_amp * noise
        w = self.m_source.l_linear
        return torch.tanh(F.linear(sines.transpose(1, 2), w.weight.float(), w.bias.float())).transpose(1, 2)

    def forward(self, mel: torch.Tensor, cache_source: torch.Tensor | None = None,
                gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [B, 80, T] -> (waveform [B, T * upsample] in [-limit, limit], the source [B, 1, T * upsample]); the source
        starts with `cache_source` where given (the stream's continuation)."""
        c = self.c
        s = self.source(self.f0_predictor(mel), gen)
        if cache_source is not None and cache_source.shape[-1]:
            s[:, :, :cache_source.shape[-1]] = cache_source
        spec = torch.stft(s[:, 0], c.n_fft, c.hop_len, c.n_fft, window=self.window, return_complex=True)
        s_stft = torch.cat([spec.real, spec.imag], dim=1).to(mel.dtype)
        x = self.conv_pre(mel)
        k = len(c.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, c.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](s_stft))
            x = sum(self.resblocks[i * k + j](x) for j in range(k)) / k
        x = self.conv_post(F.leaky_relu(x))
        half = c.n_fft // 2 + 1
        mag = torch.exp(x[:, :half].float()).clamp(max=1e2)
        ph = torch.sin(x[:, half:].float())
        wave = torch.istft(torch.complex(mag * torch.cos(ph), mag * torch.sin(ph)), c.n_fft, c.hop_len, c.n_fft,
                           window=self.window.float())
        return wave.clamp(-c.audio_limit, c.audio_limit), s


__all__ = ["Hift", "HiftConfig", "WNConv"]
