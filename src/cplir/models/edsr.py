"""EDSR (Lim et al., CVPRW 2017) in BasicSR's layout (XPixelGroup/BasicSR ``basicsr/archs/edsr_arch.py``).

Module names and state-dict keys equal BasicSR's ``EDSR``, so BasicSR EDSR weights (``params`` / ``params_ema``)
load unchanged. The defaults are EDSR-baseline: 16 residual blocks of 64 features, residual scale 1, inputs in
[0, 1] shifted by the DIV2K RGB mean and multiplied by 255 inside the network.
"""

import math
from typing import Sequence

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.prompted import PromptContext, PromptedBackbone

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv residual block without batch norm; the branch is scaled by ``res_scale``."""

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class Upsample(nn.Sequential):
    """Sub-pixel upsampling by ``scale`` (2^n: n conv + PixelShuffle(2) stages; 3: one PixelShuffle(3) stage)."""

    def __init__(self, scale: int, num_feat: int):
        if scale >= 1 and scale & (scale - 1) == 0:
            layers = []
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers = [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ConfigError(f"upscale {scale} is not supported: use a power of 2 or 3")
        super().__init__(*layers)


class EDSR(PromptedBackbone):
    """EDSR. (B, num_in_ch, H, W) in [0, 1] -> (B, num_out_ch, upscale·H, upscale·W); any H, W."""

    size_multiple = 1

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1.0, img_range: float = 255.0,
                 rgb_mean: Sequence[float] = DIV2K_RGB_MEAN):
        super().__init__()
        self.scale = upscale
        self.img_range = img_range
        # Not part of the state dict, as in BasicSR (it keeps the mean as a plain attribute).
        self.register_buffer("mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat, res_scale) for _ in range(num_block)])
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def decode(self, feats: torch.Tensor, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """The whole network (it has no prompts; ``feats`` is the input itself)."""
        x = (x - self.mean) * self.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.body(x)) + x
        return self.conv_last(self.upsample(x)) / self.img_range + self.mean
