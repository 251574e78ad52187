"""NAFNet backbone (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), exact to the published
``NAFNet_arch.py``.

Module names, state-dict keys, shapes and numerics equal the published ``NAFNet`` class, so its released
checkpoints load unchanged. Two differences that do not change a number: the published LayerNorm2d is a custom
autograd function (which breaks ONNX export); here it is written with ordinary tensor operations, whose autograd
gives the same gradients. The published constructor defaults (width 16, no encoder levels) describe no network
that was trained; the defaults here are the published GoPro width-32 configuration.

Like the published forward pass, :class:`NAFNet` zero-pads its input at the bottom and right to a multiple of
``padder_size`` = 2^levels and crops the output back, so it takes images of any size and a published
checkpoint gives the published numbers on them; hence ``size_multiple = 1``.

With ``prompt="dense"|"sparse"`` a prompt block enters before each upsampling of the decoder, the PromptIR pattern
(:mod:`cplir.models.decoder_prompts`), fused by one NAFBlock; every published layer keeps its shape.
"""

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import ConfigError
from cplir.models.decoder_prompts import (DecoderPromptedBackbone, PromptFusion, check_prompt_kind,
                                          make_prompt_block)
from cplir.models.prompted import PromptContext
from cplir.models.registry import register_model

PROMPT_TRAINING_CROP = 128  # default prompt component size: the feature's size on a 128x128 training crop


class LayerNorm2d(nn.Module):
    """Layer normalisation over channels at every pixel, (B, C, H, W): ``(x - mean) / sqrt(var + eps) * w + b``."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate: split the channels in two halves and multiply them, (B, 2C, H, W) -> (B, C, H, W)."""
    x1, x2 = x.chunk(2, dim=1)
    return x1 * x2


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block, (B, c, H, W) -> (B, c, H, W).

    ``y = x + beta * conv3(SCA(SG(dwconv(conv1(norm1(x))))))``, then ``y + gamma * conv5(SG(conv4(norm2(y))))``;
    SCA (simplified channel attention) multiplies by a 1x1 conv of the global average.
    """

    def __init__(self, c: int, DW_Expand: int = 2, FFN_Expand: int = 2):
        super().__init__()
        dw_channel = c * DW_Expand
        ffn_channel = c * FFN_Expand
        self.conv1 = nn.Conv2d(c, dw_channel, kernel_size=1)
        self.conv2 = nn.Conv2d(dw_channel, dw_channel, kernel_size=3, padding=1, groups=dw_channel)
        self.conv3 = nn.Conv2d(dw_channel // 2, c, kernel_size=1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw_channel // 2, dw_channel // 2, kernel_size=1))
        self.conv4 = nn.Conv2d(c, ffn_channel, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channel // 2, c, kernel_size=1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        # zero-initialised residual scales: every block starts as the identity
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp):
        x = simple_gate(self.conv2(self.conv1(self.norm1(inp))))
        y = inp + self.conv3(x * self.sca(x)) * self.beta
        return y + self.conv5(simple_gate(self.conv4(self.norm2(y)))) * self.gamma


def naf_stage(num_blocks: int, c: int) -> nn.Sequential:
    return nn.Sequential(*[NAFBlock(c) for _ in range(num_blocks)])


class NAFNetFeatures(NamedTuple):
    """Encoder outputs on the padded input (Hp, Wp): ``skips[i]`` (B, width*2^i, Hp/2^i, Wp/2^i) per level and
    ``middle`` (B, width*2^n, Hp/2^n, Wp/2^n), the middle blocks' output."""

    skips: Tuple[torch.Tensor, ...]
    middle: torch.Tensor


class NAFNet(DecoderPromptedBackbone):
    """NAFNet: a U-Net of NAFBlocks with additive skips, (B, img_channel, H, W) -> (B, img_channel, H, W).

    Args (the published constructor's names):
        width: channels of level 1; each level down doubles them (2x2 stride-2 conv), each level up halves them
            (1x1 conv + PixelShuffle).
        middle_blk_num: blocks at the bottom of the U-Net.
        enc_blk_nums, dec_blk_nums: blocks per encoder level (top down) and per decoder level (bottom up); the
            same number n of levels.
    Defaults: the published GoPro width-32 configuration (17,111,907 parameters).

    Prompt arguments (not in the published constructor; ignored when ``prompt`` is None):
        prompt: None (the published network), ``"dense"`` (PromptIR's prompt block) or ``"sparse"`` (CPL's
            Sparse Prompt Module). Block ``prompt{i}``, i = n..1, reads the feature that ``ups[n-i]`` brings up
            to level i: width·2^i channels at H/2^i (prompt{n} reads the middle blocks' output); ``fuse{i}`` fuses
            it with one NAFBlock at width·2^i + prompt_dims[i-1] and a 1x1 conv back to width·2^i.
        prompt_dims: widths of prompt1..prompt{n}; default half the width each block reads (width·2^(i-1)).
        prompt_sizes: spatial sizes of the components of prompt1..prompt{n}; default 128/2^i, the feature's size
            on a 128x128 training crop (as PromptIR's 64, 32, 16 at H/2, H/4, H/8).
        num_prompts, top_k, renormalize: components per block and the sparse routing (as PromptIR).
    """

    size_multiple = 1  # forward pads to padder_size itself, as published

    def __init__(self, img_channel: int = 3, width: int = 32, middle_blk_num: int = 1,
                 enc_blk_nums: Sequence[int] = (1, 1, 1, 28), dec_blk_nums: Sequence[int] = (1, 1, 1, 1),
                 prompt: Optional[str] = None, prompt_dims: Optional[Sequence[int]] = None,
                 prompt_sizes: Optional[Sequence[int]] = None, num_prompts: int = 5, top_k: int = 1,
                 renormalize: bool = False):
        super().__init__()
        check_prompt_kind(prompt)
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ConfigError(f"NAFNet needs as many decoder as encoder levels, got enc_blk_nums {list(enc_blk_nums)} "
                              f"and dec_blk_nums {list(dec_blk_nums)}")
        self.intro = nn.Conv2d(img_channel, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, kernel_size=3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        chan = width
        for num in enc_blk_nums:
            self.encoders.append(naf_stage(num, chan))
            self.downs.append(nn.Conv2d(chan, 2 * chan, kernel_size=2, stride=2))
            chan *= 2
        self.middle_blks = naf_stage(middle_blk_num, chan)
        for num in dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, kernel_size=1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(naf_stage(num, chan))
        self.padder_size = 2 ** len(self.encoders)

        levels = len(dec_blk_nums)
        self.prompt_names = tuple(f"prompt{i}" for i in range(levels, 0, -1)) if prompt else ()
        if prompt:
            dims = prompt_dims or [width * 2 ** (i - 1) for i in range(1, levels + 1)]
            sizes = prompt_sizes or [max(1, PROMPT_TRAINING_CROP // 2 ** i) for i in range(1, levels + 1)]
            if len(dims) != levels or len(sizes) != levels:
                raise ConfigError(f"prompt_dims and prompt_sizes need one entry per decoder level ({levels}: "
                                  f"prompt1..prompt{levels}), got {list(dims)} and {list(sizes)}")
            for i in range(1, levels + 1):
                chan, p_dim = width * 2 ** i, dims[i - 1]
                block = make_prompt_block(prompt, p_dim, num_prompts, sizes[i - 1], chan, top_k, renormalize)
                self.add_prompt(i, block, PromptFusion(NAFBlock(chan + p_dim), chan, p_dim, bias=True))

    def encode(self, x: torch.Tensor) -> NAFNetFeatures:
        """(B, C, H, W) zero-padded at the bottom and right to a multiple of ``padder_size`` -> encoder features."""
        ph, pw = (-x.shape[-2]) % self.padder_size, (-x.shape[-1]) % self.padder_size
        feat = self.intro(F.pad(x, (0, pw, 0, ph)))
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        return NAFNetFeatures(tuple(skips), self.middle_blks(feat))

    def decode(self, feats: NAFNetFeatures, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """:class:`NAFNetFeatures` -> (B, C, H, W), cropped to the size of the input ``x``, plus ``x``."""
        feat = feats.middle
        for level, decoder, up, skip in zip(range(len(self.ups), 0, -1), self.decoders, self.ups,
                                            reversed(feats.skips)):
            feat = decoder(up(self.with_prompt(level, feat, ctx)) + skip)
        h, w = x.shape[-2:]
        # the published code adds the padded input, then crops: the same numbers
        return self.ending(feat)[..., :h, :w] + x


@register_model("nafnet")
def nafnet(**kwargs) -> NAFNet:
    """NAFNet (Chen et al., ECCV 2022): published constructor arguments, plus ``prompt`` for decoder prompts."""
    return NAFNet(**kwargs)
