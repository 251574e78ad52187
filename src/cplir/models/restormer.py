"""Restormer backbone (Zamir et al., CVPR 2022), exact to the published ``restormer_arch.py``.

Module names, state-dict keys, shapes and numerics equal the published ``Restormer`` class, so its released
checkpoints load unchanged. PromptIR is this network plus prompt blocks in the decoder.
"""

from typing import Sequence

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.promptir import EncoderFeatures, check_input_size
from cplir.models.registry import register_model
from cplir.models.restormer_blocks import Downsample, OverlapPatchEmbed, Upsample, transformer_stage


class Restormer(nn.Module):
    """Restormer: a four-level transformer U-Net, (B, inp_channels, H, W) -> (B, out_channels, H, W).

    Args (the published constructor's names and defaults):
        dim: width of level 1; levels 2, 3, 4 have 2, 4, 8 times as many channels.
        num_blocks: transformer blocks per level (the decoder repeats levels 1-3 of the encoder's counts).
        num_refinement_blocks: blocks after the decoder, at full resolution.
        heads: attention heads per level.
        dual_pixel_task: dual-pixel defocus deblurring (``inp_channels=6``): the output is not added to the
            input; a 1x1 ``skip_conv`` carries the embedded input to the refinement output instead.
    H and W must be multiples of 8 (pad with :func:`cplir.inference.pad_to_multiple`).
    """

    size_multiple = 8
    scale = 1

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False):
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ConfigError("Restormer's num_blocks and heads need one entry per level (4 each)")
        if dim % 2 or dim < 2:
            raise ConfigError(f"Restormer's dim must be a positive even number, got {dim}")

        def stage(n, width, h):
            return transformer_stage(n, width, h, ffn_expansion_factor, bias, LayerNorm_type)

        d1, d2, d3, d4 = dim, dim * 2, dim * 4, dim * 8
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim, bias=False)  # published: bias never passed here
        self.encoder_level1 = stage(num_blocks[0], d1, heads[0])
        self.down1_2 = Downsample(d1)
        self.encoder_level2 = stage(num_blocks[1], d2, heads[1])
        self.down2_3 = Downsample(d2)
        self.encoder_level3 = stage(num_blocks[2], d3, heads[2])
        self.down3_4 = Downsample(d3)
        self.latent = stage(num_blocks[3], d4, heads[3])

        self.up4_3 = Upsample(d4)
        self.reduce_chan_level3 = nn.Conv2d(d4, d3, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(num_blocks[2], d3, heads[2])
        self.up3_2 = Upsample(d3)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(num_blocks[1], d2, heads[1])
        self.up2_1 = Upsample(d2)  # no channel reduction at level 1: the decoder works on 2*dim channels
        self.decoder_level1 = stage(num_blocks[0], d2, heads[0])
        self.refinement = stage(num_refinement_blocks, d2, heads[0])

        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(d1, d2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(d2, out_channels, kernel_size=3, padding=1, bias=bias)

    def encode(self, x: torch.Tensor) -> EncoderFeatures:
        """Encoder and latent, (B, C, H, W) -> :class:`EncoderFeatures` (levels 1-3 and the latent)."""
        check_input_size(x, self.size_multiple)
        e1 = self.encoder_level1(self.patch_embed(x))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        return EncoderFeatures(e1, e2, e3, self.latent(self.down3_4(e3)))

    def decode(self, feats: EncoderFeatures, x: torch.Tensor) -> torch.Tensor:
        """Decoder and refinement, :class:`EncoderFeatures` -> (B, out_channels, H, W); ``x`` is the input."""
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(feats.latent), feats.e3], 1)))
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), feats.e2], 1)))
        d1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(d2), feats.e1], 1)))
        if self.dual_pixel_task:
            # the published code adds the embedded input (before encoder_level1); recomputing it is one conv
            return self.output(d1 + self.skip_conv(self.patch_embed(x)))
        return self.output(d1) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), x)


@register_model("restormer")
def restormer(**kwargs) -> Restormer:
    """Restormer (Zamir et al., CVPR 2022), published constructor arguments."""
    return Restormer(**kwargs)
