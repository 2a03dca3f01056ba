"""3-D U-Net backbone shared by the sharpening models (regression, conditional VAE, SR3 DDPM).

Residual blocks (GroupNorm, SiLU) whose features are scaled and shifted by an embedding of the
diffusion time and of the input / target resolutions (FiLM, as in the DDPM U-Net of Ho et al.
2020 and the "scale-shift norm" of Dhariwal & Nichol 2021). With `norm="channel"` (each voxel's
channels normalised on their own) and no attention the network is local: its output at a voxel
depends only on inputs within `receptive_radius()` voxels, so tiled inference with that margin
equals one pass over the whole map (densitydiff.sharpen.tiling). Self-attention runs only at the
levels the caller names and always through `torch.nn.functional.scaled_dot_product_attention`,
which never materialises the N x N attention matrix (flash / memory-efficient kernels): 3-D
attention at full resolution over a 64^3 patch would need a 262144^2 matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint as _checkpoint

from densitydiff.nn.embeddings import sinusoidal_embedding

# Resolutions (Å, ~1-10) are multiplied by this before the sinusoidal embedding so that their
# phases spread over a range comparable to diffusion timesteps (0..T).
RESOLUTION_SCALE = 100.0
CONDITIONS = ("time", "input_resolution", "target_resolution")


NORMS = ("group", "channel")


def _groups(channels: int, max_groups: int = 8) -> int:
    """Largest group count <= max_groups that divides `channels` (GroupNorm needs a divisor)."""
    return math.gcd(channels, max_groups)


class ChannelNorm(nn.Module):
    """Layer norm over the channels of each voxel (no statistics across space): a local norm."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # layer_norm over the last axis of a channels-last view: one fused kernel, no copy
        # (3x faster on CPU than var_mean over axis 1); the result stays a channels-last view
        last = x.movedim(1, -1)
        out = F.layer_norm(last, (last.shape[-1],), self.weight, self.bias, self.eps)
        return out.movedim(-1, 1)


def make_norm(kind: str, channels: int) -> nn.Module:
    """GroupNorm (statistics over the whole patch) or ChannelNorm (per voxel, local)."""
    if kind == "group":
        return nn.GroupNorm(_groups(channels), channels)
    if kind == "channel":
        return ChannelNorm(channels)
    raise ValueError(f"unknown norm {kind!r}: use one of {NORMS}")


class ResBlock3d(nn.Module):
    """Two 3x3x3 convolutions with normalisation/SiLU; the embedding sets a scale and shift."""

    def __init__(
        self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0, norm: str = "group"
    ):
        super().__init__()
        self.norm1 = make_norm(norm, in_ch)
        self.conv1 = nn.Conv3d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = make_norm(norm, out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv3d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # block starts as the identity (skip path only)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv3d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift  # scale-shift norm (Dhariwal & Nichol 2021)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention3d(nn.Module):
    """Multi-head self-attention over the D*H*W voxels through scaled_dot_product_attention."""

    def __init__(self, channels: int, head_channels: int = 32, norm: str = "group"):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = make_norm(norm, channels)
        self.qkv = nn.Conv3d(channels, 3 * channels, 1)
        self.proj = nn.Conv3d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, d, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, d * h * w)
        # (3, b, heads, N, c/heads) with unit stride along channels: the fused (flash /
        # memory-efficient) kernels need it; strided inputs fall back to the math path, which
        # does materialise N x N (measured: 16.8 GB for 32^3 tokens; bench/train.py).
        q, k, v = qkv.permute(1, 0, 2, 4, 3).contiguous().unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(QK^T/sqrt(d))V, never N x N
        out = out.transpose(-1, -2).reshape(b, c, d, h, w)
        return x + self.proj(out)


class UNet3D(nn.Module):
    """Conditional 3-D U-Net: (B, in_channels, D, H, W) -> (B, out_channels, D, H, W).

    widths[i] is the channel count at level i (level 0 = full resolution; each level halves
    D, H, W, so patch sides must be divisible by 2**(len(widths)-1)). attention_levels names the
    levels with self-attention (the bottleneck counts as the last level). `norm` is "group"
    (GroupNorm: statistics over the patch) or "channel" (per voxel; see `is_local`).
    Conditioning: `t` (diffusion timestep) and the input / target resolutions in Å, each
    optional at call time and built only when named in `conditions`; each is embedded
    sinusoidally, passed through its own MLP, summed, and applied as scale/shift in every
    residual block.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        widths: Sequence[int] = (16, 32),
        blocks_per_level: int = 1,
        attention_levels: Sequence[int] = (),
        head_channels: int = 32,
        emb_dim: int = 64,
        dropout: float = 0.0,
        gradient_checkpointing: bool = False,
        conditions: Sequence[str] = CONDITIONS,
        norm: str = "group",
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}: use one of {NORMS}")
        self.norm = norm
        widths = [int(w) for w in widths]
        if not widths or any(w <= 0 for w in widths):
            raise ValueError(f"widths must be positive channel counts, got {widths}")
        bad = [lvl for lvl in attention_levels if not 0 <= lvl < len(widths)]
        if bad:
            raise ValueError(f"attention_levels {bad} outside 0..{len(widths) - 1}")
        self.widths = widths
        self.attention_levels = tuple(int(a) for a in attention_levels)
        self.gradient_checkpointing = gradient_checkpointing
        self.emb_dim = emb_dim
        unknown = set(conditions) - set(CONDITIONS)
        if unknown:
            raise ValueError(f"unknown conditions {sorted(unknown)}: use {CONDITIONS}")
        # One MLP per conditioning signal the model uses (DDP needs every parameter used).
        self.cond_mlps = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
                )
                for name in conditions
            }
        )
        self.in_conv = nn.Conv3d(in_channels, widths[0], 3, padding=1)

        def attn(level: int, ch: int) -> nn.Module:
            if level not in self.attention_levels:
                return None
            return Attention3d(ch, head_channels, norm)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = widths[0]
        for level, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(blocks_per_level):
                blocks.append(ResBlock3d(ch, w, emb_dim, dropout, norm))
                ch = w
                a = attn(level, ch)
                if a is not None:
                    blocks.append(a)
            self.down.append(blocks)
            is_last = level == len(widths) - 1
            self.downsample.append(
                nn.Identity() if is_last else nn.Conv3d(ch, ch, 3, stride=2, padding=1)
            )
        mid = [ResBlock3d(ch, ch, emb_dim, dropout, norm)]
        if len(widths) - 1 in self.attention_levels:
            mid.append(Attention3d(ch, head_channels, norm))
        mid.append(ResBlock3d(ch, ch, emb_dim, dropout, norm))
        self.mid = nn.ModuleList(mid)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            w = widths[level]
            blocks = nn.ModuleList()
            for i in range(blocks_per_level):
                blocks.append(ResBlock3d(ch + w if i == 0 else ch, w, emb_dim, dropout, norm))
                ch = w
                a = attn(level, ch)
                if a is not None:
                    blocks.append(a)
            self.up.append(blocks)
            self.upsample.append(nn.Conv3d(ch, ch, 3, padding=1) if level > 0 else nn.Identity())
        self.out_norm = make_norm(norm, ch)
        self.out_conv = nn.Conv3d(ch, out_channels, 3, padding=1)

    @property
    def is_local(self) -> bool:
        """True when no layer pools over space (channel norm, no attention)."""
        return self.norm == "channel" and not self.attention_levels

    def receptive_radius(self) -> int:
        """Voxels either side of an output voxel that can change it (exact for this layout).

        Interval arithmetic along one axis: a level-l feature with index i depends on input
        voxels s*i - a .. s*i + b (s = 2**l). A 3-wide convolution adds s to a and b; the
        stride-2 convolution adds s to both and doubles s; nearest upsampling halves s and adds
        the new s to a only; concatenation and residual sums take the larger reach.
        """
        if not self.is_local:
            raise ValueError("the receptive field is the whole patch: GroupNorm or attention")
        s, a, b = 1, 1, 1  # in_conv
        skips = []
        for level, blocks in enumerate(self.down):
            a, b = a + 2 * s * len(blocks), b + 2 * s * len(blocks)  # two convs per block
            skips.append((a, b))
            if level < len(self.down) - 1:
                a, b, s = a + s, b + s, 2 * s  # stride-2 convolution
        a, b = a + 2 * s * len(self.mid), b + 2 * s * len(self.mid)
        for blocks, up in zip(self.up, self.upsample):
            sa, sb = skips.pop()
            a, b = max(a, sa) + 2 * s * len(blocks), max(b, sb) + 2 * s * len(blocks)
            if not isinstance(up, nn.Identity):
                s //= 2
                a, b = a + 2 * s, b + s  # nearest upsampling (a only), then a 3-wide conv
        return max(a, b) + 1  # out_conv

    def embed(
        self,
        batch: int,
        device: torch.device,
        t: torch.Tensor | float | None = None,
        input_resolution: torch.Tensor | float | None = None,
        target_resolution: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Sum of the MLP-embedded sinusoidal embeddings of the conditioning scalars."""
        emb = torch.zeros(batch, self.emb_dim, device=device)
        signals = {"time": t, "input_resolution": input_resolution}
        signals["target_resolution"] = target_resolution
        for name, mlp in self.cond_mlps.items():
            value = signals[name]
            if value is None:
                continue
            scale = 1.0 if name == "time" else RESOLUTION_SCALE
            v = torch.as_tensor(value, device=device, dtype=torch.float32).reshape(-1)
            v = v.expand(batch) if v.numel() == 1 else v
            emb = emb + mlp(sinusoidal_embedding(v * scale, self.emb_dim))
        return emb

    def _run(self, block: nn.Module, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return _checkpoint(block, h, emb, use_reentrant=False)
        return block(h, emb)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float | None = None,
        input_resolution: torch.Tensor | float | None = None,
        target_resolution: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        factor = 2 ** (len(self.widths) - 1)
        if any(s % factor for s in x.shape[-3:]):
            raise ValueError(f"patch shape {tuple(x.shape[-3:])} not divisible by {factor}")
        emb = self.embed(x.shape[0], x.device, t, input_resolution, target_resolution)
        h = self.in_conv(x)
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = self._run(block, h, emb)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = self._run(block, h, emb)
        for blocks, up in zip(self.up, self.upsample):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = self._run(block, h, emb)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out_conv(F.silu(self.out_norm(h)))
