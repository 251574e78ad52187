"""Restormer building blocks used by PromptIR (Restormer, Zamir et al. CVPR 2022; docs/design.md §1).

Module and parameter names follow the published code so that its state dicts load unchanged.
"""

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """Layer normalisation over channels at every pixel, on (B, C, H, W).

    ``WithBias``: ``(x - mean) / sqrt(var + 1e-5) * w + b``; ``BiasFree``: ``x / sqrt(var + 1e-5) * w`` (the
    variance is taken around the mean but the mean is not subtracted). Population variance in both.
    """

    def __init__(self, dim: int, kind: str = "WithBias"):
        super().__init__()
        if kind not in ("WithBias", "BiasFree"):
            raise ValueError(f"LayerNorm_type must be 'WithBias' or 'BiasFree', got {kind!r}")
        self.body = _ChannelNorm(dim, with_bias=kind == "WithBias")

    def forward(self, x):
        return self.body(x)


class _ChannelNorm(nn.Module):
    # A separate submodule keeps the published key names `norm1.body.weight|bias`.
    def __init__(self, dim: int, with_bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None

    def forward(self, x):
        if self.bias is not None:
            # channels-last layer_norm is the same arithmetic as the published to_3d/to_4d round trip, faster.
            y = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, eps=1e-5)
            return y.permute(0, 3, 1, 2)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + 1e-5) * self.weight.view(1, -1, 1, 1)


class Attention(nn.Module):
    """MDTA: multi-Dconv head transposed attention (channel x channel attention per head), (B, C, H, W)."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by its {num_heads} heads")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class FeedForward(nn.Module):
    """GDFN: gated depthwise-conv feed-forward network, (B, C, H, W)."""

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.66, bias: bool = False):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x):
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))`` then ``x + ffn(norm2(x))``, (B, C, H, W)."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float = 2.66, bias: bool = False,
                 layer_norm_type: str = "WithBias"):
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


def transformer_stage(num_blocks: int, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool,
                      layer_norm_type: str) -> nn.Sequential:
    """``num_blocks`` TransformerBlocks in sequence (keys ``0.*``, ``1.*``, ... as published)."""
    return nn.Sequential(*[TransformerBlock(dim, num_heads, ffn_expansion_factor, bias, layer_norm_type)
                           for _ in range(num_blocks)])


class OverlapPatchEmbed(nn.Module):
    """3x3 convolution from image channels to the model width."""

    def __init__(self, in_channels: int = 3, embed_dim: int = 48, bias: bool = False):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=3, padding=1, bias=bias)

    def forward(self, x):
        return self.proj(x)


class Downsample(nn.Module):
    """(B, n, H, W) -> (B, 2n, H/2, W/2): 3x3 conv to n/2 channels, then PixelUnshuffle(2)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=False),
                                  nn.PixelUnshuffle(2))

    def forward(self, x):
        return self.body(x)


class Upsample(nn.Module):
    """(B, n, H, W) -> (B, n/2, 2H, 2W): 3x3 conv to 2n channels, then PixelShuffle(2)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, padding=1, bias=False),
                                  nn.PixelShuffle(2))

    def forward(self, x):
        return self.body(x)
