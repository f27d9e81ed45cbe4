"""GLM-4-Voice's speech decoder, part 1: speech tokens -> 80-bin mel by conditional flow matching (our implementation
of the published architecture, CosyVoice's `MaskedDiffWithXvec`, loading the published `flow.pt`).

    tokens [1, n] (12.5 a second) -> embedding (512) -> block conformer encoder (6 layers, relative positions,
    each position sees its own 10-token block and everything before) -> 80 channels -> repeated to the mel rate
    (22,050 / 256 frames a second, nearest) and smoothed (4 conv + GroupNorm + Mish) = mu
    mel = 10 Euler steps of a U-Net estimator (ResNet blocks + transformer blocks, channels [256, 256]) from noise,
    cosine time schedule, classifier-free guidance 0.7, conditioned on [x, mu, speaker, prompt mel]

Module and parameter names follow the published state dict (`input_embedding`, `encoder.encoders.N.self_attn.
linear_q`, `decoder.estimator.down_blocks.0.1.0.attn1.to_q`, ...), so `load_state_dict` reads `flow.pt` as it is.
The settings come from the published `config.yaml` (engine_core/codecs/glm4voice_decoder.py reads it); the defaults
below are the published classes' own.

On CUDA the 10 Euler steps (20 estimator passes, ~10,000 small kernels) are replayed from a CUDA graph captured
per mel length (`Flow.cuda_graphs`) the second time that length comes (a capture takes ~1 s at the published shapes,
an eager run a fraction of it): a reply's blocks have the same lengths from one reply to the next, so they run from
graphs, while a reply's last block, of any length, runs eagerly. `Glm4VoiceDecoder.warm` captures the first blocks'
lengths at load. Measured on an H100 (random weights): a reply's first block of 13 tokens 82 ms from its graph
(docs/perf/speech-decode-h100.json). Eager elsewhere; tests compare the two.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_core.errors import CheckpointError
from sdk.protocol.constants import SAMPLE_RATE


@dataclass
class FlowConfig:
    """The `flow` section of the published config.yaml (MaskedDiffWithXvec and its parts)."""

    input_size: int = 512
    output_size: int = 80
    spk_embed_dim: int = 192
    vocab_size: int = 16384
    input_frame_rate: float = 12.5
    # encoder (BlockConformerEncoder)
    enc_output_size: int = 512
    enc_heads: int = 8
    enc_linear_units: int = 2048
    enc_blocks: int = 6
    enc_block_size: int = 10
    enc_static_chunk_size: int = 0
    # length regulator (InterpolateRegulator)
    lr_channels: int = 80
    lr_sampling_ratios: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    # decoder (ConditionalCFM + ConditionalDecoder)
    cfm_sigma_min: float = 1e-6
    cfm_t_scheduler: str = "cosine"
    cfm_inference_cfg_rate: float = 0.7
    est_in_channels: int = 320
    est_out_channels: int = 80
    est_channels: list[int] = field(default_factory=lambda: [256, 256])
    est_attention_head_dim: int = 64
    est_n_blocks: int = 4
    est_num_mid_blocks: int = 12
    est_num_heads: int = 8
    est_act_fn: str = "gelu"
    n_timesteps: int = 10
    sample_rate: int = SAMPLE_RATE                # the published 22,050 Hz (the media clock's too)
    hop: int = 256

    def mel_frames(self, n_tokens: int) -> int:
        """Mel frames of n tokens, as the published model counts them (int(n / rate * 22050 / 256))."""
        return int(n_tokens / self.input_frame_rate * self.sample_rate / self.hop)


# ------------------------------------------------------------------------------------------------ the encoder
def rel_positions(t: int, d: int, device, dtype) -> torch.Tensor:
    """Sinusoidal embeddings [2t - 1, d] of relative positions t-1 .. -(t-1) (espnet's layout: sin on even channels,
    cos on odd ones)."""
    r = torch.arange(t - 1, -t, -1, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / d))
    pe = torch.zeros(2 * t - 1, d, device=device)
    pe[:, 0::2] = torch.sin(r * div)
    pe[:, 1::2] = torch.cos(r * div)
    return pe.to(dtype)


def block_mask(t: int, block: int, device) -> torch.Tensor:
    """bool [t, t]: query i sees keys j <= i and every key of its own `block`-long block."""
    i = torch.arange(t, device=device)
    return (i[None, :] <= i[:, None]) | (i[None, :] // block == i[:, None] // block)


class RelBlockAttention(nn.Module):
    """Multi-head attention with Transformer-XL relative positions (pos_bias_u / pos_bias_v) over a block mask."""

    def __init__(self, heads: int, dim: int, block: int) -> None:
        super().__init__()
        self.h, self.dk, self.block = heads, dim // heads, block
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.dk))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.dk))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, D], pos [2T-1, D] (rel_positions), mask bool [T, T] -> [B, T, D]."""
        b, t, _ = x.shape
        split = lambda y: y.view(b, -1, self.h, self.dk)                                   # noqa: E731
        q, k, v = split(self.linear_q(x)), split(self.linear_k(x)), split(self.linear_v(x))
        p = self.linear_pos(pos).view(-1, self.h, self.dk)                                  # [2T-1, H, dk]
        ac = torch.einsum("bihd,bjhd->bhij", q + self.pos_bias_u, k)
        bd_all = torch.einsum("bihd,rhd->bhir", q + self.pos_bias_v, p)                      # [B, H, T, 2T-1]
        i = torch.arange(t, device=x.device)
        rel = (t - 1) - i[:, None] + i[None, :]          # the column of relative position i - j
        bd = bd_all.gather(3, rel.expand(b, self.h, t, t))
        scores = (ac + bd) / math.sqrt(self.dk)
        scores = scores.masked_fill(~mask, float("-inf"))
        att = torch.softmax(scores, dim=-1)
        y = torch.einsum("bhij,bjhd->bihd", att, v).reshape(b, t, -1)
        return self.linear_out(y)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-norm self-attention + feed-forward (the published config: no macaron, no convolution module)."""

    def __init__(self, dim: int, heads: int, hidden: int, block: int) -> None:
        super().__init__()
        self.self_attn = RelBlockAttention(heads, dim, block)
        self.feed_forward = FeedForward(dim, hidden)
        self.norm_mha = nn.LayerNorm(dim, eps=1e-5)
        self.norm_ff = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), pos, mask)
        return x + self.feed_forward(self.norm_ff(x))


class BlockConformer(nn.Module):
    def __init__(self, c: FlowConfig) -> None:
        super().__init__()
        d = c.enc_output_size
        self.c = c
        self.embed = nn.Module()
        self.embed.out = nn.Sequential(nn.Linear(c.input_size, d), nn.LayerNorm(d, eps=1e-5))
        self.encoders = nn.ModuleList(ConformerLayer(d, c.enc_heads, c.enc_linear_units, c.enc_block_size)
                                      for _ in range(c.enc_blocks))
        self.after_norm = nn.LayerNorm(d, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [1, T, input_size] -> [1, T, d]."""
        t, d = x.shape[1], self.c.enc_output_size
        x = self.embed.out(x) * math.sqrt(d)
        pos = rel_positions(t, d, x.device, x.dtype)
        mask = block_mask(t, self.c.enc_block_size, x.device)
        if self.c.enc_static_chunk_size > 0:                     # a static chunk mask as well, when configured
            ch = torch.arange(t, device=x.device) // self.c.enc_static_chunk_size
            mask = mask & (ch[None, :] <= ch[:, None])
        for layer in self.encoders:
            x = layer(x, pos, mask)
        return self.after_norm(x)


class LengthRegulator(nn.Module):
    """Token rate -> mel rate: nearest repetition, then convolutions (`model.0` ... in the published names)."""

    def __init__(self, c: FlowConfig) -> None:
        super().__init__()
        ch = c.lr_channels
        layers: list[nn.Module] = []
        for _ in c.lr_sampling_ratios:
            layers += [nn.Conv1d(ch, ch, 3, 1, 1), nn.GroupNorm(1, ch), nn.Mish()]
        layers.append(nn.Conv1d(ch, ch, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x [1, T, C] -> [1, frames, C]."""
        x = F.interpolate(x.transpose(1, 2).contiguous(), size=frames, mode="nearest")
        return self.model(x).transpose(1, 2)


# ------------------------------------------------------------------------------------------- the estimator
def _block1d(dim: int, out: int) -> nn.Module:
    m = nn.Module()
    m.block = nn.Sequential(nn.Conv1d(dim, out, 3, padding=1), nn.GroupNorm(8, out), nn.Mish())
    return m


class ResnetBlock1D(nn.Module):
    def __init__(self, dim: int, out: int, time_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(time_dim, out))
        self.block1, self.block2 = _block1d(dim, out), _block1d(out, out)
        self.res_conv = nn.Conv1d(dim, out, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.block1.block(x) + self.mlp(t)[:, :, None]
        return self.block2.block(h) + self.res_conv(x)


class TransformerBlock(nn.Module):
    """LayerNorm -> self-attention (to_q/to_k/to_v without bias, to_out.0 with) -> LayerNorm -> GELU MLP (x4)."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.norm1, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1 = nn.Module()
        self.attn1.to_q = nn.Linear(dim, inner, bias=False)
        self.attn1.to_k = nn.Linear(dim, inner, bias=False)
        self.attn1.to_v = nn.Linear(dim, inner, bias=False)
        self.attn1.to_out = nn.ModuleList([nn.Linear(inner, dim)])
        self.ff = nn.Module()
        proj = nn.Module()
        proj.proj = nn.Linear(dim, 4 * dim)
        self.ff.net = nn.ModuleList([proj, nn.Identity(), nn.Linear(4 * dim, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, C]."""
        b, t, _ = x.shape
        h = self.norm1(x)
        a = self.attn1
        q, k, v = (lin(h).view(b, t, self.heads, -1).transpose(1, 2) for lin in (a.to_q, a.to_k, a.to_v))
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, -1)
        x = x + a.to_out[0](y)
        return x + self.ff.net[2](F.gelu(self.ff.net[0].proj(self.norm3(x))))


def sinusoidal(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Time embedding [B, dim] of t [B] (sin half, cos half)."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
    ang = scale * t.float()[:, None] * freq[None]
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class Estimator(nn.Module):
    """The 1-D U-Net that predicts the flow's velocity (ConditionalDecoder)."""

    def __init__(self, c: FlowConfig) -> None:
        super().__init__()
        if c.est_act_fn != "gelu":
            raise CheckpointError(f"GLM-4-Voice decoder: act_fn {c.est_act_fn!r} is not supported (gelu)")
        ch = list(c.est_channels)
        self.in_channels = c.est_in_channels
        tdim = ch[0] * 4
        self.time_mlp = nn.Module()
        self.time_mlp.linear_1, self.time_mlp.linear_2 = nn.Linear(c.est_in_channels, tdim), nn.Linear(tdim, tdim)

        def blocks(dim: int) -> nn.ModuleList:
            return nn.ModuleList(TransformerBlock(dim, c.est_num_heads, c.est_attention_head_dim)
                                 for _ in range(c.est_n_blocks))

        self.down_blocks, self.mid_blocks, self.up_blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        out = c.est_in_channels
        for i, o in enumerate(ch):
            last = i == len(ch) - 1
            inp, out = out, o
            down = nn.Conv1d(out, out, 3, padding=1) if last else _Conv(nn.Conv1d(out, out, 3, 2, 1))
            self.down_blocks.append(nn.ModuleList([ResnetBlock1D(inp, out, tdim), blocks(out), down]))
        for _ in range(c.est_num_mid_blocks):
            self.mid_blocks.append(nn.ModuleList([ResnetBlock1D(ch[-1], out, tdim), blocks(out)]))
        ups = ch[::-1] + [ch[0]]
        for i in range(len(ups) - 1):
            last = i == len(ups) - 2
            o = ups[i + 1]
            up = nn.Conv1d(o, o, 3, padding=1) if last else _Conv(nn.ConvTranspose1d(o, o, 4, 2, 1))
            self.up_blocks.append(nn.ModuleList([ResnetBlock1D(ups[i] * 2, o, tdim), blocks(o), up]))
        self.final_block = _block1d(ups[-1], ups[-1])
        self.final_proj = nn.Conv1d(ups[-1], c.est_out_channels, 1)

    @staticmethod
    def _attend(x: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        x = x.transpose(1, 2)
        for blk in blocks:
            x = blk(x)
        return x.transpose(1, 2)

    def forward(self, x, mu, t, spks, cond) -> torch.Tensor:
        """x, mu, cond [B, 80, L]; t [B]; spks [B, 80] -> velocity [B, 80, L]."""
        tm = self.time_mlp
        temb = tm.linear_2(F.silu(tm.linear_1(sinusoidal(t, self.in_channels).to(x.dtype))))
        x = torch.cat([x, mu, spks[:, :, None].expand(-1, -1, x.shape[-1]), cond], dim=1)
        skips = []
        for resnet, blocks, down in self.down_blocks:
            x = self._attend(resnet(x, temb), blocks)
            skips.append(x)
            x = down(x)
        for resnet, blocks in self.mid_blocks:
            x = self._attend(resnet(x, temb), blocks)
        for resnet, blocks, up in self.up_blocks:
            skip = skips.pop()
            x = self._attend(resnet(torch.cat([x[:, :, :skip.shape[-1]], skip], dim=1), temb), blocks)
            x = up(x)
        return self.final_proj(self.final_block.block(x))


class _Conv(nn.Module):
    """A convolution kept as `.conv` (the published Downsample1D / Upsample1D)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# ------------------------------------------------------------------------------------------------ the flow
class Flow(nn.Module):
    """Speech tokens (+ the mel of the tokens before them, as a prompt) -> mel [1, 80, frames]."""

    def __init__(self, c: FlowConfig) -> None:
        super().__init__()
        self.c = c
        self.cuda_graphs = True          # the Euler loop replayed from a CUDA graph per mel length (on CUDA)
        self.max_graphs = 24
        self._graphs: OrderedDict[int, _SolveGraph] = OrderedDict()
        self._seen: dict[int, int] = {}                  # mel length -> times solved (captured on the second)
        self._graph_lock = threading.Lock()
        self._pool = None
        self.input_embedding = nn.Embedding(c.vocab_size, c.input_size)
        self.spk_embed_affine_layer = nn.Linear(c.spk_embed_dim, c.output_size)
        self.encoder = BlockConformer(c)
        self.encoder_proj = nn.Linear(c.enc_output_size, c.output_size)
        self.length_regulator = LengthRegulator(c)
        self.decoder = nn.Module()
        self.decoder.estimator = Estimator(c)

    def velocity(self, x, mu, t, spks, cond) -> torch.Tensor:
        """The guided velocity: the conditioned and the unconditioned (mu, speaker, prompt zero) estimates in one
        batch of two, mixed by the inference CFG rate."""
        est, w = self.decoder.estimator, self.c.cfm_inference_cfg_rate
        if w <= 0:
            return est(x, mu, t.expand(x.shape[0]), spks, cond)
        v = est(torch.cat([x, x]), torch.cat([mu, torch.zeros_like(mu)]), t.expand(2 * x.shape[0]),
                torch.cat([spks, torch.zeros_like(spks)]), torch.cat([cond, torch.zeros_like(cond)]))
        vc, vu = v.chunk(2)
        return (1.0 + w) * vc - w * vu

    @torch.inference_mode()
    def inference(self, tokens: torch.Tensor, prompt_tokens: torch.Tensor, prompt_mel: torch.Tensor,
                  speaker: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [1, n], prompt_tokens [1, p] (the tokens before them), prompt_mel [1, 80, q] (their mel) -> the mel of
        the whole [1, 80, frames(p + n)] minus its first q frames. speaker [1, spk_embed_dim] (zeros: GLM-4-Voice's).
        noise: the starting noise [1, 80, frames] (None: a generator seeded 42, as the published model draws it)."""
        c, dev = self.c, tokens.device
        dtype = self.input_embedding.weight.dtype
        if speaker is None:
            speaker = torch.zeros(1, c.spk_embed_dim, device=dev, dtype=dtype)
        spks = self.spk_embed_affine_layer(F.normalize(speaker, dim=1))
        ids = torch.cat([prompt_tokens, tokens], dim=1).clamp(min=0)
        h = self.encoder_proj(self.encoder(self.input_embedding(ids)))
        frames = c.mel_frames(ids.shape[1])
        mu = self.length_regulator(h, frames).transpose(1, 2)                                   # [1, 80, L]
        cond = torch.zeros_like(mu)
        q = prompt_mel.shape[-1]
        cond[:, :, :q] = prompt_mel[:, :, :frames]
        if noise is None:
            g = torch.Generator().manual_seed(42)
            noise = torch.randn(mu.shape, generator=g).to(dev, mu.dtype)
        key = mu.shape[-1]
        with self._graph_lock:
            seen = self._seen.get(key, 0)
            self._seen[key] = seen + 1
            if self.cuda_graphs and mu.is_cuda and (key in self._graphs or seen >= 1):
                x = self._graph(mu).run(noise, mu, spks, cond)
            else:
                x = self.solve(noise, mu, spks, cond)
        return x[:, :, q:]

    def times(self) -> list[float]:
        """The Euler steps' times, 0 .. 1 (cosine schedule: 1 - cos(t pi / 2))."""
        n = self.c.n_timesteps
        ts = [i / n for i in range(n + 1)]
        return [1 - math.cos(t * 0.5 * math.pi) for t in ts] if self.c.cfm_t_scheduler == "cosine" else ts

    def solve(self, x: torch.Tensor, mu: torch.Tensor, spks: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The Euler steps from noise x [1, 80, L] to the mel."""
        ts = self.times()
        for a, b in zip(ts[:-1], ts[1:]):
            t = torch.full((1,), a, device=x.device, dtype=torch.float32)
            x = x + (b - a) * self.velocity(x, mu, t, spks, cond)
        return x

    def _graph(self, mu: torch.Tensor) -> _SolveGraph:
        key = mu.shape[-1]
        g = self._graphs.get(key)
        if g is None:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            g = self._graphs[key] = _SolveGraph(self, mu, self._pool)
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        self._graphs.move_to_end(key)
        return g


class _SolveGraph:
    """`Flow.solve` for one mel length, captured as a CUDA graph: inputs copied into its buffers, then replayed."""

    def __init__(self, flow: Flow, like: torch.Tensor, pool) -> None:
        self.x, self.mu, self.cond = (torch.zeros_like(like) for _ in range(3))
        self.spks = torch.zeros(1, like.shape[1], device=like.device, dtype=like.dtype)
        side = torch.cuda.Stream(like.device)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            flow.solve(self.x, self.mu, self.spks, self.cond)          # warm-up: lazy initialisations
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool, capture_error_mode="thread_local"):   # other threads go on
            self.out = flow.solve(self.x, self.mu, self.spks, self.cond)

    def run(self, x: torch.Tensor, mu: torch.Tensor, spks: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for dst, src in ((self.x, x), (self.mu, mu), (self.spks, spks), (self.cond, cond)):
            dst.copy_(src)
        self.graph.replay()
        return self.out.clone()


__all__ = ["Flow", "FlowConfig", "block_mask", "rel_positions"]
