"""DehazeFormer: vision transformers for single image dehazing (Song et al., IEEE TIP 2023).

Module names, state-dict keys and numerics equal the published code, IDKiro/DehazeFormer
``models/dehazeformer.py``, so its released weights load unchanged. The registered variants ``dehazeformer_t``
... ``dehazeformer_l`` are the published size presets. The published training and test code feeds images scaled
to [-1, 1] and reads the output in that range; its weights expect it. ``signed_range=True`` builds that
convention into the network (``x → 2x − 1`` before, ``y → (y + 1) / 2`` after), so it takes and returns images in
[0, 1] like every other model here; the architecture itself takes any range.
"""

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import ConfigError
from cplir.models.prompted import PromptContext, PromptedBackbone
from cplir.models.windows import relative_offsets, window_partition, window_reverse

CONV_TYPES = ("Conv", "DWConv")
PATCH = 4  # the input is padded to a multiple of the two 2x patch merges


def _trunc_normal_xavier(weight: torch.Tensor, gain: float = 1.0) -> None:
    # The published initialisation: truncated normal with a Xavier std, times a depth-dependent gain.
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    nn.init.trunc_normal_(weight, std=gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _depth_gain(network_depth: int) -> float:
    return (8 * network_depth) ** (-1 / 4)


class RLN(nn.Module):
    """Rescale-aware LayerNorm: normalise over (C, H, W) per sample and return the statistics' affine maps.

    (B, C, H, W) -> (normalised, rescale, rebias), rescale and rebias (B, C, 1, 1) re-injecting the removed
    standard deviation and mean after the attention branch (paper §III-B).
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.meta1 = nn.Conv2d(1, dim, 1)
        self.meta2 = nn.Conv2d(1, dim, 1)
        nn.init.trunc_normal_(self.meta1.weight, std=0.02)
        nn.init.constant_(self.meta1.bias, 1.0)
        nn.init.trunc_normal_(self.meta2.weight, std=0.02)
        nn.init.zeros_(self.meta2.bias)

    def forward(self, x: torch.Tensor):
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = torch.sqrt((x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True) + self.eps)
        out = (x - mean) / std * self.weight + self.bias
        return out, self.meta1(std), self.meta2(mean)


class Mlp(nn.Module):
    """Pointwise conv - ReLU - pointwise conv. (B, C, H, W) -> same."""

    def __init__(self, network_depth: int, in_features: int, hidden_features: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(in_features, hidden_features, 1), nn.ReLU(True),
                                 nn.Conv2d(hidden_features, in_features, 1))
        for conv in (self.mlp[0], self.mlp[2]):
            _trunc_normal_xavier(conv.weight, _depth_gain(network_depth))
            nn.init.zeros_(conv.bias)

    def forward(self, x):
        return self.mlp(x)


class WindowAttention(nn.Module):
    """Window attention whose relative position bias is an MLP of log-spaced offsets (paper §III-C).

    (nW*B, N, 3C) concatenated q, k, v -> (nW*B, N, C), N = window².
    """

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        offsets = relative_offsets(window_size, window_size)
        self.register_buffer("relative_positions", torch.sign(offsets) * torch.log(1.0 + offsets.abs()))
        self.meta = nn.Sequential(nn.Linear(2, 256), nn.ReLU(True), nn.Linear(256, num_heads))

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        b_, n, _ = qkv.shape
        q, k, v = qkv.reshape(b_, n, 3, self.num_heads, self.dim // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.meta(self.relative_positions).permute(2, 0, 1).unsqueeze(0)
        return (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b_, n, self.dim)


class Attention(nn.Module):
    """Token mixer of one block: a conv path (``Conv`` or depthwise ``DWConv``) and, if ``use_attn``, shifted
    window attention summed with it before the projection. (B, C, H, W) -> same.

    Windows are formed on a reflect-padded map (the shift pads ``shift_size`` at the top left) rather than by a
    cyclic roll, so no attention mask is needed.
    """

    def __init__(self, network_depth: int, dim: int, num_heads: int, window_size: int, shift_size: int,
                 use_attn: bool, conv_type: str):
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.shift_size = shift_size
        self.use_attn = use_attn
        self.conv_type = conv_type
        if conv_type == "Conv":
            self.conv = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect"), nn.ReLU(True),
                                      nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect"))
        else:
            self.conv = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, padding_mode="reflect")
        if conv_type == "DWConv" or use_attn:
            self.V = nn.Conv2d(dim, dim, 1)
            self.proj = nn.Conv2d(dim, dim, 1)
        if use_attn:
            self.QK = nn.Conv2d(dim, dim * 2, 1)
            self.attn = WindowAttention(dim, window_size, num_heads)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # QK keeps the plain Xavier std; every other conv is scaled down with the network depth.
                _trunc_normal_xavier(m.weight, 1.0 if m.weight.shape[0] == 2 * dim else _depth_gain(network_depth))
                nn.init.zeros_(m.bias)

    def pad_windows(self, x: torch.Tensor) -> torch.Tensor:
        """Reflect-pad (B, C, H, W) so H, W are window multiples, with ``shift_size`` rows/cols before."""
        h, w = x.shape[2:]
        ws, s = self.window_size, self.shift_size
        pad_h, pad_w = (-h) % ws, (-w) % ws
        if s > 0:
            return F.pad(x, (s, (ws - s + pad_w) % ws, s, (ws - s + pad_h) % ws), mode="reflect")
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, h, w = x.shape
        if not self.use_attn:
            if self.conv_type == "Conv":
                return self.conv(x)
            return self.proj(self.conv(self.V(x)))
        v = self.V(x)
        qkv = self.pad_windows(torch.cat([self.QK(x), v], dim=1))
        ht, wt = qkv.shape[2:]
        windows = window_partition(qkv.permute(0, 2, 3, 1), self.window_size)
        windows = self.attn(windows.view(windows.shape[0], -1, windows.shape[-1]))
        out = window_reverse(windows, self.window_size, ht, wt)
        s = self.shift_size
        attn_out = out[:, s:s + h, s:s + w, :].permute(0, 3, 1, 2)
        return self.proj(self.conv(v) + attn_out)


class TransformerBlock(nn.Module):
    """Token mixer and MLP with residuals; with attention, the mixer is wrapped in RLN and its rescale/rebias."""

    def __init__(self, network_depth: int, dim: int, num_heads: int, mlp_ratio: float, window_size: int,
                 shift_size: int, use_attn: bool, conv_type: str):
        super().__init__()
        self.use_attn = use_attn
        self.norm1 = RLN(dim) if use_attn else nn.Identity()
        self.attn = Attention(network_depth, dim, num_heads, window_size, shift_size, use_attn, conv_type)
        self.mlp = Mlp(network_depth, dim, int(dim * mlp_ratio))

    def forward(self, x):
        if self.use_attn:
            y, rescale, rebias = self.norm1(x)
            x = x + (self.attn(y) * rescale + rebias)
        else:
            x = x + self.attn(x)
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    """``depth`` blocks; the last ``attn_ratio·depth`` use window attention, odd ones with shifted windows."""

    def __init__(self, network_depth: int, dim: int, depth: int, num_heads: int, mlp_ratio: float,
                 window_size: int, attn_ratio: float, conv_type: str):
        super().__init__()
        attn_depth = attn_ratio * depth
        self.blocks = nn.ModuleList([
            TransformerBlock(network_depth, dim, num_heads, mlp_ratio, window_size,
                             0 if i % 2 == 0 else window_size // 2, i >= depth - attn_depth, conv_type)
            for i in range(depth)])

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x


class PatchEmbed(nn.Module):
    """Strided conv changing the width and dividing the resolution by ``patch_size``."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, kernel_size: Optional[int] = None):
        super().__init__()
        kernel_size = kernel_size or patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size, stride=patch_size,
                              padding=(kernel_size - patch_size + 1) // 2, padding_mode="reflect")

    def forward(self, x):
        return self.proj(x)


class PatchUnEmbed(nn.Module):
    """Conv to ``out_chans·patch_size²`` channels and pixel shuffle, multiplying the resolution by
    ``patch_size``."""

    def __init__(self, patch_size: int, out_chans: int, embed_dim: int, kernel_size: int = 1):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(embed_dim, out_chans * patch_size ** 2, kernel_size,
                                            padding=kernel_size // 2, padding_mode="reflect"),
                                  nn.PixelShuffle(patch_size))

    def forward(self, x):
        return self.proj(x)


class SKFusion(nn.Module):
    """Selective-kernel fusion of two (B, C, H, W) maps with softmax channel weights."""

    def __init__(self, dim: int, height: int = 2, reduction: int = 8):
        super().__init__()
        self.height = height
        d = max(int(dim / reduction), 4)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.mlp = nn.Sequential(nn.Conv2d(dim, d, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(d, dim * height, 1, bias=False))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        b, c, h, w = feats[0].shape
        stacked = torch.cat(list(feats), dim=1).view(b, self.height, c, h, w)
        attn = self.mlp(self.avg_pool(stacked.sum(dim=1))).view(b, self.height, c, 1, 1).softmax(dim=1)
        return (stacked * attn).sum(dim=1)


class DehazeFormer(PromptedBackbone):
    """DehazeFormer: a 5-stage U-Net of transformer layers. (B, 3, H, W) -> (B, 3, H, W); any H, W.

    The last layer predicts K (1 channel) and B (3 channels) of the reformulated scattering model and returns
    ``K·I − B + I`` (paper Eq. 4). The input is reflect-padded to a multiple of 4, the output cropped back.
    """

    size_multiple = 1
    scale = 1

    def __init__(self, in_chans: int = 3, out_chans: int = 4, window_size: int = 8,
                 embed_dims: Sequence[int] = (24, 48, 96, 48, 24), mlp_ratios: Sequence[float] = (2., 4., 4., 2., 2.),
                 depths: Sequence[int] = (16, 16, 16, 8, 8), num_heads: Sequence[int] = (2, 4, 6, 1, 1),
                 attn_ratio: Sequence[float] = (1 / 4, 1 / 2, 3 / 4, 0, 0),
                 conv_type: Sequence[str] = ("DWConv",) * 5, signed_range: bool = False):
        super().__init__()
        self.signed_range = signed_range
        bad = [c for c in conv_type if c not in CONV_TYPES]
        if bad:
            raise ConfigError(f"conv_type entries must be one of {CONV_TYPES}, got {bad}")
        if embed_dims[1] != embed_dims[3] or embed_dims[0] != embed_dims[4]:
            raise ConfigError(f"embed_dims must be symmetric (dims 0 = 4 and 1 = 3), got {list(embed_dims)}")
        if out_chans != 4 or in_chans != 3:
            raise ConfigError("DehazeFormer maps RGB (in_chans=3) to K and B (out_chans=4)")
        depth = sum(depths)

        def layer(i):
            return BasicLayer(depth, embed_dims[i], depths[i], num_heads[i], mlp_ratios[i], window_size,
                              attn_ratio[i], conv_type[i])

        self.patch_embed = PatchEmbed(1, in_chans, embed_dims[0], kernel_size=3)
        self.layer1 = layer(0)
        self.patch_merge1 = PatchEmbed(2, embed_dims[0], embed_dims[1])
        self.skip1 = nn.Conv2d(embed_dims[0], embed_dims[0], 1)
        self.layer2 = layer(1)
        self.patch_merge2 = PatchEmbed(2, embed_dims[1], embed_dims[2])
        self.skip2 = nn.Conv2d(embed_dims[1], embed_dims[1], 1)
        self.layer3 = layer(2)
        self.patch_split1 = PatchUnEmbed(2, embed_dims[3], embed_dims[2])
        self.fusion1 = SKFusion(embed_dims[3])
        self.layer4 = layer(3)
        self.patch_split2 = PatchUnEmbed(2, embed_dims[4], embed_dims[3])
        self.fusion2 = SKFusion(embed_dims[4])
        self.layer5 = layer(4)
        self.patch_unembed = PatchUnEmbed(1, out_chans, embed_dims[4], kernel_size=3)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W), H and W multiples of 4 -> (B, 4, H, W) maps K and B."""
        x = self.layer1(self.patch_embed(x))
        skip1 = x
        x = self.layer2(self.patch_merge1(x))
        skip2 = x
        x = self.patch_split1(self.layer3(self.patch_merge2(x)))
        x = self.fusion1([x, self.skip2(skip2)]) + x
        x = self.patch_split2(self.layer4(x))
        x = self.fusion2([x, self.skip1(skip1)]) + x
        return self.patch_unembed(self.layer5(x))

    def decode(self, feats: torch.Tensor, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """The whole network (it has no prompts; ``feats`` is the input itself)."""
        h, w = x.shape[2:]
        if self.signed_range:
            x = 2 * x - 1
        x = F.pad(x, (0, (-w) % PATCH, 0, (-h) % PATCH), mode="reflect")
        k, b = torch.split(self.forward_features(x), (1, 3), dim=1)
        out = (k * x - b + x)[:, :, :h, :w]
        return (out + 1) / 2 if self.signed_range else out


PRESETS = {
    # name: (embed_dims, depths, attn_ratio, conv_type), all with mlp_ratios (2, 4, 4, 2, 2), heads (2, 4, 6, 1, 1)
    "t": ((24, 48, 96, 48, 24), (4, 4, 4, 2, 2), (0, 1 / 2, 1, 0, 0), "DWConv"),
    "s": ((24, 48, 96, 48, 24), (8, 8, 8, 4, 4), (1 / 4, 1 / 2, 3 / 4, 0, 0), "DWConv"),
    "b": ((24, 48, 96, 48, 24), (16, 16, 16, 8, 8), (1 / 4, 1 / 2, 3 / 4, 0, 0), "DWConv"),
    "d": ((24, 48, 96, 48, 24), (32, 32, 32, 16, 16), (1 / 4, 1 / 2, 3 / 4, 0, 0), "DWConv"),
    "w": ((48, 96, 192, 96, 48), (16, 16, 16, 8, 8), (1 / 4, 1 / 2, 3 / 4, 0, 0), "DWConv"),
    "m": ((24, 48, 96, 48, 24), (12, 12, 12, 6, 6), (1 / 4, 1 / 2, 3 / 4, 0, 0), "Conv"),
    "l": ((48, 96, 192, 96, 48), (16, 16, 16, 12, 12), (1 / 4, 1 / 2, 3 / 4, 0, 0), "Conv"),
}


def dehazeformer_preset(size: str, **kwargs) -> DehazeFormer:
    """The published ``dehazeformer_<size>`` configuration; keyword arguments override it."""
    embed_dims, depths, attn_ratio, conv = PRESETS[size]
    config = dict(embed_dims=embed_dims, mlp_ratios=(2., 4., 4., 2., 2.), depths=depths, num_heads=(2, 4, 6, 1, 1),
                  attn_ratio=attn_ratio, conv_type=(conv,) * 5)
    return DehazeFormer(**{**config, **kwargs})
