"""IDT: Image Deraining Transformer (Xiao et al., IEEE TPAMI 2022).

Module names, state-dict keys and numerics equal the published code, jiexiaou/IDT ``model.py`` (class ``IDT``),
so its released weights load unchanged. The defaults are the configuration of its training and test scripts
(``train_derain.py``, ``test_full_size.py``): 128x128 patches, embed_dim 32, window 8.

The published network takes square ``img_size`` x ``img_size`` patches only: the spatial transformers attend
across the grid of 8x8 windows, whose position bias and convolutions are sized for that grid. Full-size images are
processed as overlapping ``img_size`` tiles (its ``test_full_size.py``).
"""

import math
from typing import Optional, Sequence

import torch
from torch import nn

from cplir.errors import ConfigError, InputSizeError
from cplir.models.drop_path import drop_path_or_identity
from cplir.models.prompted import PromptContext, PromptedBackbone
from cplir.models.swinir import init_swin_weights
from cplir.models.windows import (image_to_tokens, relative_position_index, tokens_to_image, window_partition,
                                  window_reverse)

SPATIAL_WINDOW = 8  # pixels per side of the windows the spatial transformer treats as tokens (fixed as published)
LEVELS = 4


def square_image(x: torch.Tensor) -> torch.Tensor:
    """(B, L, C) tokens of a square image -> (B, C, √L, √L) (IDT only sees square patches)."""
    side = math.isqrt(x.shape[1])
    return tokens_to_image(x, side, side)


class LinearProjection(nn.Module):
    """Tokens (B', N, C) -> q, k, v (B', heads, N, C/heads) and a positional value map v_r (B', C, √N, √N)."""

    def __init__(self, dim: int, heads: int, dim_head: int, bias: bool = True):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim_head * heads, bias=bias)
        self.to_kv = nn.Linear(dim, dim_head * heads * 3, bias=bias)

    def forward(self, x: torch.Tensor):
        b_, n, c = x.shape
        q = self.to_q(x).reshape(b_, n, self.heads, c // self.heads).transpose(1, 2)
        k, v, v_r = self.to_kv(x).reshape(b_, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        side = math.isqrt(n)
        return q, k, v, v_r.transpose(-1, -2).reshape(b_, c, side, side)


class WindowAttention(nn.Module):
    """Relative-position-enhanced multi-head self-attention in a window (paper §3.3).

    Position bias from a table indexed by offsets clipped to ±(k_bound-1), plus a positional branch: a depthwise
    and a grouped pointwise conv on the separate value map v_r. (B', N, C), N = window² -> (B', N, C).
    """

    def __init__(self, dim: int, win_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, k_bound: int = 8):
        super().__init__()
        self.win_size = win_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * k_bound - 1) ** 2, num_heads))
        reach = min(win_size - 1, 2)  # the positional conv is at most 5x5 and never wider than the window
        self.Position_Extract = nn.Sequential(nn.Conv2d(dim, dim, 2 * reach + 1, padding=reach, groups=dim),
                                              nn.Conv2d(dim, dim, 1, groups=num_heads))
        # A plain attribute in the published code: not part of its state dict.
        self.register_buffer("relative_position_index", relative_position_index(win_size, win_size, k_bound),
                             persistent=False)
        self.qkv = LinearProjection(dim, num_heads, dim // num_heads, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b_, n, c = x.shape
        q, k, v, v_r = self.qkv(x)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = (attn + bias.permute(2, 0, 1).unsqueeze(0)).softmax(dim=-1)
        position = self.Position_Extract(v_r).reshape(b_, c, n).transpose(-2, -1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b_, n, c) + position)


class LeFF(nn.Module):
    """Locally-enhanced feed-forward: linear - GELU, depthwise 3x3 conv - GELU with a residual, linear.
    (B, L, C) tokens of a square image -> same."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden_dim, dim))

    def forward(self, x):
        x = square_image(self.linear1(x))
        return self.linear2(image_to_tokens(self.dwconv(x) + x))


class IDTBlock(nn.Module):
    """Window transformer: window attention and LeFF, each pre-norm with a residual (no shift, as published).
    (B, H*W, C) tokens of a square image -> same."""

    def __init__(self, dim: int, input_resolution: int, num_heads: int, win_size: int, mlp_ratio: float,
                 qkv_bias: bool, qk_scale: Optional[float], drop_path: float):
        super().__init__()
        self.win_size = min(win_size, input_resolution)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.win_size, num_heads, qkv_bias, qk_scale)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = LeFF(dim, int(dim * mlp_ratio))

    def forward(self, x):
        b, n, c = x.shape
        side, ws = math.isqrt(n), self.win_size
        windows = window_partition(self.norm1(x).view(b, side, side, c), ws).view(-1, ws * ws, c)
        y = window_reverse(self.attn(windows), ws, side, side).reshape(b, n, c)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SpatialTransformerLayer(nn.Module):
    """Spatial transformer: per channel, each 8x8 window is one token of 64 values, and attention runs across
    the (R/8)² windows of the image (paper §3.2). (B, R*R, C) -> same.

    The attention output comes back with its tokens in (window, pixel-in-window) order and is added to the
    raster-ordered input as is; the published weights were trained with this order.
    """

    def __init__(self, input_resolution: int, num_heads: int, channel: int, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop_path: float, k_bound: int):
        super().__init__()
        dim = SPATIAL_WINDOW ** 2
        self.attn = WindowAttention(dim, input_resolution // SPATIAL_WINDOW, num_heads, qkv_bias, qk_scale, k_bound)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(channel)
        self.mlp = LeFF(channel, int(dim * mlp_ratio))

    def forward(self, x):
        b, n, c = x.shape
        win = SPATIAL_WINDOW
        windows = nn.functional.unfold(square_image(x), win, stride=win)  # (B, C*win², nW)
        n_windows = windows.shape[-1]
        tokens = windows.reshape(b * c, win * win, n_windows).transpose(1, 2)  # (B*C, nW, win²)
        y = self.attn(tokens).reshape(b, c, n_windows, win * win).permute(0, 2, 3, 1).reshape(b, n, c)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicIDTLayer(nn.Module):
    """``num`` window transformers followed (if ``spatial``) by a spatial transformer."""

    def __init__(self, dim: int, input_resolution: int, num_heads: int, win_size: int, mlp_ratio: float,
                 qkv_bias: bool, qk_scale: Optional[float], drop_path: Sequence[float], k_bound: int, num: int,
                 spatial: bool = True):
        super().__init__()
        blocks = [IDTBlock(dim, input_resolution, num_heads, win_size, mlp_ratio, qkv_bias, qk_scale, drop_path[0])
                  for _ in range(num)]
        if spatial:
            blocks.append(SpatialTransformerLayer(input_resolution, num_heads, dim, mlp_ratio, qkv_bias, qk_scale,
                                                  drop_path[-1], k_bound))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x


class Downsample(nn.Module):
    """4x4 stride-2 conv on the token image: (B, L, C_in) -> (B, L/4, C_out)."""

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channel, out_channel, 4, stride=2, padding=1))

    def forward(self, x):
        return image_to_tokens(self.conv(square_image(x)))


class Upsample(nn.Module):
    """2x2 stride-2 transposed conv on the token image: (B, L, C_in) -> (B, 4L, C_out)."""

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.deconv = nn.Sequential(nn.ConvTranspose2d(in_channel, out_channel, 2, stride=2))

    def forward(self, x):
        return image_to_tokens(self.deconv(square_image(x)))


class InputProj(nn.Module):
    """3x3 conv and LeakyReLU: (B, C_in, H, W) -> (B, H*W, C_out)."""

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channel, out_channel, 3, padding=1), nn.LeakyReLU(inplace=True))

    def forward(self, x):
        return image_to_tokens(self.proj(x))


class OutputProj(nn.Module):
    """3x3 conv: (B, H*W, C_in) -> (B, C_out, H, W)."""

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channel, out_channel, 3, padding=1))

    def forward(self, x):
        return self.proj(square_image(x))


# Per layer (encoder 0-3, bottleneck, decoder 0-3): width / embed_dim (a decoder layer takes its upsampled input
# concatenated with the encoder skip), resolution divisor, window transformers, k_bound of the spatial transformer.
LAYER_WIDTHS = (1, 2, 4, 8, 16, 16, 8, 4, 2)
LAYER_DOWNSCALE = (1, 2, 4, 8, 16, 8, 4, 2, 1)
LAYER_BLOCKS = (3, 3, 2, 2, 1, 1, 2, 2, 3)
LAYER_K_BOUNDS = (16, 8, 4, 2, 1, 2, 4, 8, 16)


class IDT(PromptedBackbone):
    """IDT: a 4-level U-Net of window and spatial transformers. (B, C, S, S) -> (B, C, S, S), S = ``img_size``.

    ``depths`` sets only the stochastic-depth rates (as published); the number of blocks per layer is fixed.
    """

    scale = 1

    def __init__(self, img_size: int = 128, in_chans: int = 3, embed_dim: int = 32,
                 depths: Sequence[int] = (3, 3, 2, 2, 1, 1, 2, 2, 3),
                 num_heads: Sequence[int] = (1, 2, 4, 8, 16, 16, 8, 4, 2), win_size: int = 8,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 drop_path_rate: float = 0.1):
        super().__init__()
        if len(depths) != 9 or len(num_heads) != 9:
            raise ConfigError("IDT needs 9 entries in depths and num_heads (4 encoder levels, bottleneck, 4 decoder)")
        resolutions = [img_size // d for d in LAYER_DOWNSCALE]
        if img_size % LAYER_DOWNSCALE[LEVELS] or any(
                r % min(win_size, r) or (i != LEVELS and r % SPATIAL_WINDOW) for i, r in enumerate(resolutions)):
            raise ConfigError(f"IDT's img_size {img_size} does not split into whole {win_size}x{win_size} windows "
                              f"(and {SPATIAL_WINDOW}x{SPATIAL_WINDOW} spatial-transformer windows) at every level "
                              f"{resolutions}: use 64 or a multiple of 128 (published: 128)")
        self.img_size = img_size
        self.size_multiple = img_size
        enc_dpr = torch.linspace(0, drop_path_rate, sum(depths[:LEVELS]), device="cpu").tolist()
        dec_dpr = enc_dpr[::-1]
        dec_starts = [sum(depths[LEVELS + 1:LEVELS + 1 + i]) for i in range(LEVELS + 1)]
        drop_paths = ([enc_dpr[sum(depths[:i]):sum(depths[:i + 1])] for i in range(LEVELS)]
                      + [[drop_path_rate] * depths[LEVELS]]
                      + [dec_dpr[dec_starts[i]:dec_starts[i + 1]] for i in range(LEVELS)])
        widths = [embed_dim * m for m in LAYER_WIDTHS]

        def layer(i):
            return BasicIDTLayer(widths[i], resolutions[i], num_heads[i], win_size, mlp_ratio, qkv_bias, qk_scale,
                                 drop_paths[i], LAYER_K_BOUNDS[i], LAYER_BLOCKS[i], spatial=i != LEVELS)

        self.input_proj = InputProj(in_chans, embed_dim)
        self.output_proj = OutputProj(2 * embed_dim, in_chans)
        for i in range(LEVELS):
            setattr(self, f"encoderlayer_{i}", layer(i))
            setattr(self, f"dowsample_{i}", Downsample(widths[i], widths[i] * 2))  # sic: the published name
        self.bottle = layer(LEVELS)
        for i in range(LEVELS):
            # Half the next decoder width: the encoder skip concatenated to it brings the other half.
            setattr(self, f"upsample_{i}", Upsample(widths[LEVELS + i], widths[LEVELS + 1 + i] // 2))
            setattr(self, f"decoderlayer_{i}", layer(LEVELS + 1 + i))
        self.apply(init_swin_weights)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputSizeError` unless ``x`` is (B, C, img_size, img_size)."""
        if x.dim() != 4 or x.shape[-2:] != (self.img_size, self.img_size):
            raise InputSizeError(
                f"IDT takes {self.img_size}x{self.img_size} patches (its img_size), got a tensor of shape "
                f"{tuple(x.shape)}: split larger images into overlapping {self.img_size}x{self.img_size} tiles")

    def decode(self, feats: torch.Tensor, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """The whole network (it has no prompts; ``feats`` is the input itself)."""
        y = self.input_proj(x)
        skips = []
        for i in range(LEVELS):
            y = getattr(self, f"encoderlayer_{i}")(y)
            skips.append(y)
            y = getattr(self, f"dowsample_{i}")(y)
        y = self.bottle(y)
        for i in range(LEVELS):
            y = torch.cat([getattr(self, f"upsample_{i}")(y), skips[LEVELS - 1 - i]], -1)
            y = getattr(self, f"decoderlayer_{i}")(y)
        return x + self.output_proj(y)
