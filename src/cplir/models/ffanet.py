"""FFA-Net: Feature Fusion Attention network for single-image dehazing (Qin et al., AAAI 2020).

Module names, state-dict keys and numerics equal the published code (zhilin007/FFA-Net ``net/models/FFA.py``,
identical to the ``FFANet`` architecture of the MCLIR repository, Aitical/MCLIR ``basicsr/archs/ffanet_arch.py``).
The defaults are MCLIR's configuration (``options/FFANet_RESIDE_IN_fromScratch.yml``): 3 groups of 19 blocks.

Both published training pipelines (FFA-Net's ``net/data_utils.py``, MCLIR's FFANet models) normalise the hazy
input with the mean and standard deviation of :data:`INPUT_MEAN` / :data:`INPUT_STD` before the network, and the
global residual adds that normalised input; the released weights expect it. ``input_norm=True`` builds that step
into the network, so it takes and returns images in [0, 1] like every other model here.
"""

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.prompted import PromptContext, PromptedBackbone

WIDTH = 64  # fixed in the published code
INPUT_MEAN = (0.64, 0.6, 0.58)  # the published input normalisation (FFA-Net and MCLIR data loaders)
INPUT_STD = (0.14, 0.15, 0.152)


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class PixelAttention(nn.Module):
    """Pixel attention (PA): x * sigmoid(conv(relu(conv(x)))) with a one-channel map. (B, C, H, W) -> same."""

    def __init__(self, channels: int):
        super().__init__()
        self.pa = nn.Sequential(nn.Conv2d(channels, channels // 8, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(channels // 8, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.pa(x)


class ChannelAttention(nn.Module):
    """Channel attention (CA) on globally pooled features. (B, C, H, W) -> same."""

    def __init__(self, channels: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.ca = nn.Sequential(nn.Conv2d(channels, channels // 8, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(channels // 8, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.ca(self.avg_pool(x))


class Block(nn.Module):
    """Basic block: local residual conv, conv, CA, PA, and a second (block) residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = conv3x3(dim, dim)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(dim, dim)
        self.calayer = ChannelAttention(dim)
        self.palayer = PixelAttention(dim)

    def forward(self, x):
        res = self.act1(self.conv1(x)) + x
        res = self.palayer(self.calayer(self.conv2(res)))
        return res + x


class Group(nn.Module):
    """``blocks`` basic blocks and a conv, with a group residual."""

    def __init__(self, dim: int, blocks: int):
        super().__init__()
        self.gp = nn.Sequential(*[Block(dim) for _ in range(blocks)], conv3x3(dim, dim))

    def forward(self, x):
        return self.gp(x) + x


class FFANet(PromptedBackbone):
    """FFA-Net. (B, 3, H, W) hazy -> (B, 3, H, W) dehazed; any H, W.

    The three group outputs are fused with channel-attention weights computed from their concatenation, then
    pixel attention, two convs and a global residual to the input.
    """

    size_multiple = 1
    scale = 1

    def __init__(self, gps: int = 3, blocks: int = 19, input_norm: bool = False):
        super().__init__()
        if gps != 3:
            raise ConfigError(f"FFA-Net has exactly 3 groups (gps=3), got gps={gps}")
        self.gps = gps
        self.dim = WIDTH
        self.input_norm = input_norm
        self.g1 = Group(WIDTH, blocks)
        self.g2 = Group(WIDTH, blocks)
        self.g3 = Group(WIDTH, blocks)
        self.ca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(WIDTH * gps, WIDTH // 16, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(WIDTH // 16, WIDTH * gps, 1), nn.Sigmoid())
        self.palayer = PixelAttention(WIDTH)
        self.pre = nn.Sequential(conv3x3(3, WIDTH))
        self.post = nn.Sequential(conv3x3(WIDTH, WIDTH), conv3x3(WIDTH, 3))

    def decode(self, feats: torch.Tensor, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """The whole network (it has no prompts; ``feats`` is the input itself)."""
        if self.input_norm:
            x = (x - x.new_tensor(INPUT_MEAN).view(1, -1, 1, 1)) / x.new_tensor(INPUT_STD).view(1, -1, 1, 1)
        res1 = self.g1(self.pre(x))
        res2 = self.g2(res1)
        res3 = self.g3(res2)
        w = self.ca(torch.cat([res1, res2, res3], dim=1)).view(-1, self.gps, self.dim, 1, 1)
        fused = w[:, 0] * res1 + w[:, 1] * res2 + w[:, 2] * res3
        return self.post(self.palayer(fused)) + x
