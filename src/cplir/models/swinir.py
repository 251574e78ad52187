"""SwinIR: image restoration with Swin Transformer (Liang et al., ICCVW 2021).

Module names, state-dict keys (buffers ``relative_position_index`` and ``attn_mask`` included) and numerics equal
the published code, JingyunLiang/SwinIR ``models/network_swinir.py``, so its released weights load unchanged.
The registered ``swinir_light_x4`` is the paper's lightweight ×4 super-resolution model, the one MCLIR retrains.
"""

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from cplir.errors import ConfigError
from cplir.models.drop_path import drop_path_or_identity
from cplir.models.edsr import DIV2K_RGB_MEAN, Upsample
from cplir.models.prompted import PromptContext, PromptedBackbone
from cplir.models.windows import (image_to_tokens, relative_position_index, tokens_to_image, window_partition,
                                  window_reverse)

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RECONSTRUCTION_WIDTH = 64  # num_feat of the published reconstruction heads


def _pair(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def shifted_window_mask(h: int, w: int, window: int, shift: int) -> torch.Tensor:
    """(nW, window², window²) additive mask for shifted windows: -100 between tokens of different regions.

    After the cyclic shift a window may hold pixels that were not neighbours; they must not attend to each other.
    """
    region = torch.zeros(1, h, w, 1)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, (hs, ws) in enumerate((hs, ws) for hs in bands for ws in bands):
        region[:, hs, ws, :] = i
    region = window_partition(region, window).view(-1, window * window)
    return torch.where(region.unsqueeze(1) != region.unsqueeze(2), -100.0, 0.0)


class Mlp(nn.Module):
    """fc1 - GELU - dropout - fc2 - dropout on (..., C) tokens."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside a window with a learned relative position bias.

    (nW*B, N, C) tokens (N = window²) and an optional (nW, N, N) additive mask -> (nW*B, N, C).
    """

    def __init__(self, dim: int, window_size: Tuple[int, int], num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        wh, ww = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wh - 1) * (2 * ww - 1), num_heads))
        self.register_buffer("relative_position_index", relative_position_index(wh, ww))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b_, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj_drop(self.proj(x))


class SwinTransformerBlock(nn.Module):
    """(Shifted-)window attention and MLP, each pre-norm with a residual. (B, H*W, C) tokens -> same.

    ``input_resolution`` is the training patch size: its shift mask is kept as the ``attn_mask`` buffer (a key of
    the published state dict); other sizes get their mask computed on the fly. A window not smaller than the
    input shrinks to the input and is not shifted, as published.
    """

    def __init__(self, dim: int, input_resolution: Tuple[int, int], num_heads: int, window_size: int = 7,
                 shift_size: int = 0, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.input_resolution = input_resolution
        if min(input_resolution) <= window_size:
            shift_size, window_size = 0, min(input_resolution)
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, (window_size, window_size), num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = drop_path_or_identity(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        mask = shifted_window_mask(*input_resolution, window_size, shift_size) if shift_size > 0 else None
        self.register_buffer("attn_mask", mask)

    def window_mask(self, x_size: Tuple[int, int], device: torch.device) -> Optional[torch.Tensor]:
        if self.shift_size == 0 or tuple(x_size) == tuple(self.input_resolution):
            return self.attn_mask
        return shifted_window_mask(*x_size, self.window_size, self.shift_size).to(device)

    def forward(self, x: torch.Tensor, x_size: Tuple[int, int]) -> torch.Tensor:
        h, w = x_size
        b, _, c = x.shape
        ws, shift = self.window_size, self.shift_size
        y = self.norm1(x).view(b, h, w, c)
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        windows = window_partition(y, ws).view(-1, ws * ws, c)
        windows = self.attn(windows, mask=self.window_mask(x_size, x.device))
        y = window_reverse(windows.view(-1, ws, ws, c), ws, h, w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Module):
    """``depth`` Swin blocks, alternating regular and shifted (by window/2) windows."""

    def __init__(self, dim: int, input_resolution: Tuple[int, int], depth: int, num_heads: int, window_size: int,
                 mlp_ratio: float, qkv_bias: bool, qk_scale: Optional[float], drop: float, attn_drop: float,
                 drop_path: Sequence[float], use_checkpoint: bool):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, input_resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                                 mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path[i])
            for i in range(depth)])

    def forward(self, x, x_size):
        for blk in self.blocks:
            x = checkpoint(blk, x, x_size, use_reentrant=False) if self.use_checkpoint else blk(x, x_size)
        return x


def residual_conv(dim: int, kind: str) -> nn.Module:
    """The conv closing a residual group: one 3x3 conv (``1conv``) or a 3-conv bottleneck at dim/4 (``3conv``)."""
    if kind == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if kind == "3conv":
        return nn.Sequential(nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                             nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True),
                             nn.Conv2d(dim // 4, dim, 3, 1, 1))
    raise ConfigError(f"resi_connection must be '1conv' or '3conv', got {kind!r}")


class RSTB(nn.Module):
    """Residual Swin Transformer Block: a Swin layer, a conv on the image layout, and a residual."""

    def __init__(self, dim: int, resi_connection: str, **layer_kwargs):
        super().__init__()
        self.residual_group = BasicLayer(dim=dim, **layer_kwargs)
        self.conv = residual_conv(dim, resi_connection)

    def forward(self, x, x_size):
        return image_to_tokens(self.conv(tokens_to_image(self.residual_group(x, x_size), *x_size))) + x


class PatchEmbed(nn.Module):
    """Flatten (B, C, H, W) into (B, H*W, C) tokens, optionally layer-normalised (patch size 1)."""

    def __init__(self, embed_dim: int, patch_norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x):
        x = image_to_tokens(x)
        return self.norm(x) if self.norm is not None else x


class SwinIR(PromptedBackbone):
    """SwinIR. (B, in_chans, H, W) -> (B, in_chans, upscale·H, upscale·W); any H, W.

    The input is reflect-padded to a multiple of ``window_size`` and the output cropped back, as published.
    ``upsampler``: ``pixelshuffle`` (classical SR), ``pixelshuffledirect`` (lightweight SR), ``nearest+conv``
    (real-world SR, ×2/×4), or ``""`` (restoration at scale 1 with a global residual).
    """

    size_multiple = 1

    def __init__(self, img_size: Union[int, Sequence[int]] = 64, patch_size: int = 1, in_chans: int = 3,
                 embed_dim: int = 96, depths: Sequence[int] = (6, 6, 6, 6), num_heads: Sequence[int] = (6, 6, 6, 6),
                 window_size: int = 7, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1, ape: bool = False, patch_norm: bool = True,
                 use_checkpoint: bool = False, upscale: int = 2, img_range: float = 1.0, upsampler: str = "",
                 resi_connection: str = "1conv"):
        super().__init__()
        if patch_size != 1:
            raise ConfigError(f"SwinIR works on pixels as tokens: patch_size must be 1, got {patch_size}")
        if upsampler not in UPSAMPLERS:
            raise ConfigError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if upsampler == "nearest+conv" and upscale not in (2, 4):
            raise ConfigError(f"upsampler 'nearest+conv' supports upscale 2 or 4, got {upscale}")
        self.scale = upscale if upsampler else 1
        self.upscale = upscale
        self.upsampler = upsampler
        self.window_size = window_size
        self.img_range = img_range
        mean = DIV2K_RGB_MEAN if in_chans == 3 else (0.0,)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)  # not in published keys
        resolution = _pair(img_size)
        if min(resolution) > window_size and (resolution[0] % window_size or resolution[1] % window_size):
            # the shifted-window masks are computed at img_size at construction (the published code fails there too)
            raise ConfigError(f"img_size {img_size} must be a multiple of window_size {window_size}; the published "
                              "configurations use window_size 8 with img_size 48 or 64")

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, patch_norm)
        self.ape = ape
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, resolution[0] * resolution[1], embed_dim))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()  # grows with depth
        starts = [sum(depths[:i]) for i in range(len(depths) + 1)]
        self.layers = nn.ModuleList([
            RSTB(embed_dim, resi_connection, input_resolution=resolution, depth=depth, num_heads=heads,
                 window_size=window_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale, drop=drop_rate,
                 attn_drop=attn_drop_rate, drop_path=dpr[starts[i]:starts[i + 1]], use_checkpoint=use_checkpoint)
            for i, (depth, heads) in enumerate(zip(depths, num_heads))])
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = residual_conv(embed_dim, resi_connection)

        feat = RECONSTRUCTION_WIDTH
        if upsampler in ("pixelshuffle", "nearest+conv"):
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        if upsampler == "pixelshuffle":
            self.upsample = Upsample(upscale, feat)
            self.conv_last = nn.Conv2d(feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":  # lightweight SR: one conv and one pixel shuffle
            self.upsample = nn.Sequential(nn.Conv2d(embed_dim, upscale ** 2 * in_chans, 3, 1, 1),
                                          nn.PixelShuffle(upscale))
        elif upsampler == "nearest+conv":
            self.conv_up1 = nn.Conv2d(feat, feat, 3, 1, 1)
            if upscale == 4:
                self.conv_up2 = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(feat, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)
        self.apply(init_swin_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim, H, W) -> (B, embed_dim, H, W) through the residual Swin groups."""
        x_size = (x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        if self.ape:
            x = x + self.absolute_pos_embed
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, x_size)
        return tokens_to_image(self.norm(x), *x_size)

    def decode(self, feats: torch.Tensor, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """The whole network (it has no prompts; ``feats`` is the input itself)."""
        h, w = x.shape[2:]
        pad_h, pad_w = (-h) % self.window_size, (-w) % self.window_size
        x = F.pad(x, (0, pad_w, 0, pad_h), "reflect")
        x = (x - self.mean) * self.img_range
        if self.upsampler:
            feat = self.conv_first(x)
            feat = self.conv_after_body(self.forward_features(feat)) + feat
            x = self.reconstruct(feat)
        else:  # restoration: the network predicts the residual to the (normalised) input
            feat = self.conv_first(x)
            x = x + self.conv_last(self.conv_after_body(self.forward_features(feat)) + feat)
        x = x / self.img_range + self.mean
        return x[:, :, :h * self.scale, :w * self.scale]

    def reconstruct(self, feat: torch.Tensor) -> torch.Tensor:
        """Upsample deep features (B, embed_dim, H, W) to the image (B, in_chans, upscale·H, upscale·W)."""
        if self.upsampler == "pixelshuffledirect":
            return self.upsample(feat)
        feat = self.conv_before_upsample(feat)
        if self.upsampler == "pixelshuffle":
            return self.conv_last(self.upsample(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        if self.upscale == 4:
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def init_swin_weights(m: nn.Module) -> None:
    """Swin's initialisation (published for SwinIR and IDT): truncated-normal linear weights (std 0.02), zero
    biases, unit LayerNorms. Use with ``model.apply``."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
