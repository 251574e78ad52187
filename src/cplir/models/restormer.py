"""Restormer backbone (Zamir et al., CVPR 2022), exact to the published ``restormer_arch.py``, optionally with
prompts in its decoder.

Without prompts (``prompt=None``, the default) module names, state-dict keys, shapes and numerics equal the
published ``Restormer`` class, so its released checkpoints load unchanged. With ``prompt="dense"|"sparse"`` a
prompt block enters before each of the three upsamplings, as in PromptIR (:mod:`cplir.models.decoder_prompts`);
unlike PromptIR, the fused feature is reduced back to the width of its level, so every published layer keeps its
shape.
"""

from typing import Optional, Sequence

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.decoder_prompts import (DecoderPromptedBackbone, PromptFusion, check_prompt_kind,
                                          make_prompt_block)
from cplir.models.prompted import PromptContext
from cplir.models.promptir import PUBLISHED_PROMPT_SIZES, EncoderFeatures, default_prompt_dims
from cplir.models.registry import register_model
from cplir.models.restormer_blocks import (Downsample, OverlapPatchEmbed, TransformerBlock, Upsample,
                                           transformer_stage)

PROMPT_BLOCKS = ("prompt3", "prompt2", "prompt1")  # decoder order: on the latent (H/8), at H/4, at H/2


class Restormer(DecoderPromptedBackbone):
    """Restormer: a four-level transformer U-Net, (B, inp_channels, H, W) -> (B, out_channels, H, W).

    Args (the published constructor's names and defaults):
        dim: width of level 1; levels 2, 3, 4 have 2, 4, 8 times as many channels.
        num_blocks: transformer blocks per level (the decoder repeats levels 1-3 of the encoder's counts).
        num_refinement_blocks: blocks after the decoder, at full resolution.
        heads: attention heads per level.
        dual_pixel_task: dual-pixel defocus deblurring (``inp_channels=6``): the output is not added to the
            input; a 1x1 ``skip_conv`` carries the embedded input to the refinement output instead.
    Prompt arguments (not in the published constructor; ignored when ``prompt`` is None):
        prompt: None (the published network), ``"dense"`` (PromptIR's prompt block) or ``"sparse"`` (CPL's
            Sparse Prompt Module). Blocks ``prompt3`` (on the latent, 8·dim channels, H/8), ``prompt2`` (4·dim,
            H/4) and ``prompt1`` (2·dim, H/2); each is fused by one transformer block with ``heads[2]`` heads
            (``fuse3``, ``fuse2``, ``fuse1``), as in PromptIR.
        prompt_dims: widths of prompt1..3; default PromptIR's (64, 128, 320) scaled with ``dim``.
        prompt_sizes: spatial sizes of the components of prompt1..3 (PromptIR's 64, 32, 16).
        num_prompts, top_k, renormalize: components per block and the sparse routing (as PromptIR).
    H and W must be multiples of 8 (pad with :func:`cplir.inference.pad_to_multiple`).
    """

    size_multiple = 8

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False, prompt: Optional[str] = None,
                 prompt_dims: Optional[Sequence[int]] = None, prompt_sizes: Sequence[int] = PUBLISHED_PROMPT_SIZES,
                 num_prompts: int = 5, top_k: int = 1, renormalize: bool = False):
        super().__init__()
        check_prompt_kind(prompt)
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

        self.prompt_names = PROMPT_BLOCKS if prompt else ()
        if prompt:
            fuse_heads = heads[2]  # PromptIR fuses prompts with heads[2] heads at every level
            dims = prompt_dims if prompt_dims is not None else default_prompt_dims(dim, fuse_heads)
            if len(dims) != 3 or len(prompt_sizes) != 3:
                raise ConfigError(f"prompt_dims and prompt_sizes need one entry per prompt block (3: prompt1, "
                                  f"prompt2, prompt3), got {list(dims)} and {list(prompt_sizes)}")
            for level, width in zip((1, 2, 3), (d2, d3, d4)):
                p_dim, size = dims[level - 1], prompt_sizes[level - 1]
                block = make_prompt_block(prompt, p_dim, num_prompts, size, width, top_k, renormalize)
                fuse = TransformerBlock(width + p_dim, fuse_heads, ffn_expansion_factor, bias, LayerNorm_type)
                self.add_prompt(level, block, PromptFusion(fuse, width, p_dim, bias))

    def encode(self, x: torch.Tensor) -> EncoderFeatures:
        """Encoder and latent, (B, C, H, W) -> :class:`EncoderFeatures` (levels 1-3 and the latent)."""
        e1 = self.encoder_level1(self.patch_embed(x))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        return EncoderFeatures(e1, e2, e3, self.latent(self.down3_4(e3)))

    def decode(self, feats: EncoderFeatures, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """Decoder and refinement, :class:`EncoderFeatures` -> (B, out_channels, H, W); ``x`` is the input."""
        latent = self.with_prompt(3, feats.latent, ctx)
        d3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), feats.e3], 1)))
        d3 = self.with_prompt(2, d3, ctx)
        d2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(d3), feats.e2], 1)))
        d2 = self.with_prompt(1, d2, ctx)
        d1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(d2), feats.e1], 1)))
        if self.dual_pixel_task:
            # the published code adds the embedded input (before encoder_level1); recomputing it is one conv
            return self.output(d1 + self.skip_conv(self.patch_embed(x)))
        return self.output(d1) + x


@register_model("restormer")
def restormer(**kwargs) -> Restormer:
    """Restormer (Zamir et al., CVPR 2022): published constructor arguments, plus ``prompt`` for decoder prompts."""
    return Restormer(**kwargs)
