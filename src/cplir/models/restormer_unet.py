"""Restormer's four-level U-Net with the kind of block left open (Restormer, DRSformer, MambaIR).

Level widths dim, 2·dim, 4·dim, 8·dim at H, H/2, H/4, H/8; pixel-unshuffle down, pixel-shuffle up; the decoder's
first level stays at 2·dim (no channel reduction); a refinement stage and a 3x3 output convolution plus the input.
Module names are Restormer's (``patch_embed``, ``encoder_level1`` ... ``latent``, ``up4_3``,
``reduce_chan_level3`` ... ``refinement``, ``output``), which the published derivatives keep, so their
checkpoints load unchanged. Prompts enter before the three upsamplings (:mod:`cplir.models.decoder_prompts`).
"""

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.decoder_prompts import DecoderPromptedBackbone
from cplir.models.prompted import PromptContext
from cplir.models.promptir import EncoderFeatures
from cplir.models.restormer_blocks import Downsample, OverlapPatchEmbed, Upsample

# stage(num_blocks, width, level) -> the blocks of one level; level 0..3 picks per-level settings (e.g. heads).
StageBuilder = Callable[[int, int, int], nn.Module]


class RestormerUNet(DecoderPromptedBackbone):
    """(B, inp_channels, H, W) -> (B, out_channels, H, W); H and W multiples of 8.

    Args:
        stage: builds the blocks of a level (also used for the decoder levels, at their own widths).
        refinement: the full-resolution stage after the decoder (2·dim channels).
        compensator: an optional module between ``patch_embed`` and the encoder (key ``encoder_level0``).
        dual_pixel_task: dual-pixel defocus deblurring (``inp_channels=6``): no image residual; a 1x1
            ``skip_conv`` carries the embedded input to the refinement output instead.
    """

    size_multiple = 8
    scale = 1

    def __init__(self, inp_channels: int, out_channels: int, dim: int, num_blocks: Sequence[int],
                 stage: StageBuilder, refinement: nn.Module, bias: bool = False, dual_pixel_task: bool = False,
                 compensator: Optional[nn.Module] = None):
        super().__init__()
        if len(num_blocks) != 4:
            raise ConfigError(f"num_blocks needs one entry per level (4), got {list(num_blocks)}")
        d1, d2, d3, d4 = dim, dim * 2, dim * 4, dim * 8
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level0 = compensator if compensator is not None else nn.Identity()  # no parameters if absent
        self.encoder_level1 = stage(num_blocks[0], d1, 0)
        self.down1_2 = Downsample(d1)
        self.encoder_level2 = stage(num_blocks[1], d2, 1)
        self.down2_3 = Downsample(d2)
        self.encoder_level3 = stage(num_blocks[2], d3, 2)
        self.down3_4 = Downsample(d3)
        self.latent = stage(num_blocks[3], d4, 3)

        self.up4_3 = Upsample(d4)
        self.reduce_chan_level3 = nn.Conv2d(d4, d3, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(num_blocks[2], d3, 2)
        self.up3_2 = Upsample(d3)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(num_blocks[1], d2, 1)
        self.up2_1 = Upsample(d2)
        self.decoder_level1 = stage(num_blocks[0], d2, 0)
        self.refinement = refinement
        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(d1, d2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(d2, out_channels, kernel_size=3, padding=1, bias=bias)

    def level_widths(self) -> dict:
        """{prompt level: width of the feature it reads}: 3 on the latent, 2 and 1 after decoder levels 3, 2."""
        return {3: self.up4_3.body[0].in_channels, 2: self.up3_2.body[0].in_channels,
                1: self.up2_1.body[0].in_channels}

    def encode(self, x: torch.Tensor) -> EncoderFeatures:
        """(B, inp_channels, H, W) -> :class:`~cplir.models.EncoderFeatures` (levels 1-3 and the latent)."""
        e1 = self.encoder_level1(self.encoder_level0(self.patch_embed(x)))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        return EncoderFeatures(e1, e2, e3, self.latent(self.down3_4(e3)))

    def decode(self, feats: EncoderFeatures, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """Decoder and refinement -> (B, out_channels, H, W); ``x`` is the input (the global residual)."""
        latent = self.with_prompt(3, feats.latent, ctx)
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), feats.e3], dim=1)))
        d3 = self.with_prompt(2, d3, ctx)
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), feats.e2], dim=1)))
        d2 = self.with_prompt(1, d2, ctx)
        d1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(d2), feats.e1], dim=1)))
        if self.dual_pixel_task:
            # the published code adds the embedded input (before any encoder stage); recomputing it is one conv
            return self.output(d1 + self.skip_conv(self.patch_embed(x)))
        return self.output(d1) + x
