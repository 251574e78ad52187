"""PromptIR backbone (Potlapalli et al., NeurIPS 2023), with dense prompt blocks or CPL's Sparse Prompt Modules.

At the defaults the module names, state-dict keys, shapes and numerics equal the published PromptIR (without its
six layers that the forward pass never uses). Every channel count derives from ``dim`` and ``prompt_dims``, so
tiny configurations (dim=16, one block per level) work too.
"""

from typing import NamedTuple, Optional, Sequence

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.prompt_block import PromptGenBlock
from cplir.models.prompted import PromptContext, PromptedBackbone
from cplir.models.restormer_blocks import Downsample, OverlapPatchEmbed, TransformerBlock, Upsample, transformer_stage
from cplir.models.sparse_prompt import SparsePromptModule

PUBLISHED_PROMPT_DIMS = (64, 128, 320)  # prompt1, prompt2, prompt3 at dim=48
PUBLISHED_PROMPT_SIZES = (64, 32, 16)
PROMPT_BLOCKS = ("prompt3", "prompt2", "prompt1")  # decoder order: H/8, H/4, H/2


def default_prompt_dims(dim: int, multiple: int) -> tuple:
    """The published prompt widths scaled by dim/48, rounded to a multiple of the prompt-fusion head count."""
    return tuple(max(multiple, round(p * dim / 48 / multiple) * multiple) for p in PUBLISHED_PROMPT_DIMS)


class EncoderFeatures(NamedTuple):
    """Encoder outputs: e1 (B, dim, H, W), e2 (B, 2dim, H/2, W/2), e3 (B, 4dim, H/4, W/4),
    latent (B, 8dim, H/8, W/8)."""

    e1: torch.Tensor
    e2: torch.Tensor
    e3: torch.Tensor
    latent: torch.Tensor

    def repeat(self, m: int) -> "EncoderFeatures":
        """The same features m times along the batch, (m*B, ...), sample-major blocks of B."""
        return EncoderFeatures(*(t.repeat(m, 1, 1, 1) for t in self))


class PromptIR(PromptedBackbone):
    """PromptIR: Restormer U-Net with prompt blocks on the decoder side. (B, 3, H, W) -> (B, 3, H, W).

    Args:
        prompt: ``"dense"`` (PromptIR's prompt block) or ``"sparse"`` (CPL's Sparse Prompt Module).
        prompt_dims: widths of prompt1, prompt2, prompt3; default (64, 128, 320) scaled with ``dim``.
        prompt_sizes: spatial sizes of the prompt components of prompt1..3.
        num_prompts: P, components per prompt block (5 published; CPL also uses 10 and 15).
        top_k, renormalize: Sparse Prompt Module routing (ignored for dense prompts).
    H and W must be multiples of 8 (pad with :func:`cplir.inference.pad_to_multiple`).
    """

    size_multiple = 8
    shares_encoder = True  # prompts enter only in the decoder
    prompt_names = PROMPT_BLOCKS

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", prompt: str = "dense", prompt_dims: Optional[Sequence[int]] = None,
                 prompt_sizes: Sequence[int] = PUBLISHED_PROMPT_SIZES, num_prompts: int = 5, top_k: int = 1,
                 renormalize: bool = False):
        super().__init__()
        if prompt not in ("dense", "sparse"):
            raise ConfigError(f"prompt must be 'dense' or 'sparse', got {prompt!r}")
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ConfigError(f"num_blocks and heads need one entry per level (4), got {list(num_blocks)} and "
                              f"{list(heads)}")
        if dim % 2 or dim < 2:
            raise ConfigError(f"dim must be a positive even number, got {dim}")
        if min(num_blocks) < 0 or num_refinement_blocks < 0:
            raise ConfigError(f"num_blocks and num_refinement_blocks must be >= 0, got {list(num_blocks)} and "
                              f"{num_refinement_blocks}")
        positive = {"heads": heads, "prompt_sizes": prompt_sizes, "prompt_dims": prompt_dims or [1],
                    "num_prompts": [num_prompts], "ffn_expansion_factor": [ffn_expansion_factor]}
        for key, values in positive.items():
            if min(values) <= 0:
                raise ConfigError(f"{key} must be positive, got {values if len(values) > 1 else values[0]}")
        fuse_heads = heads[2]  # the published code fuses prompts with heads[2] heads at every level
        p1, p2, p3 = prompt_dims if prompt_dims is not None else default_prompt_dims(dim, fuse_heads)
        self.prompt = prompt
        self.dim = dim

        def stage(n, width, h):
            return transformer_stage(n, width, h, ffn_expansion_factor, bias, LayerNorm_type)

        def fuse(width):
            return TransformerBlock(width, fuse_heads, ffn_expansion_factor, bias, LayerNorm_type)

        def prompt_block(p_dim, size, lin_dim):
            if prompt == "dense":
                return PromptGenBlock(p_dim, num_prompts, size, lin_dim)
            return SparsePromptModule(p_dim, num_prompts, size, lin_dim, top_k=top_k, renormalize=renormalize)

        d1, d2, d3, d4 = dim, dim * 2, dim * 4, dim * 8
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)  # never biased in the published code, whatever `bias`
        self.encoder_level1 = stage(num_blocks[0], d1, heads[0])
        self.down1_2 = Downsample(d1)
        self.encoder_level2 = stage(num_blocks[1], d2, heads[1])
        self.down2_3 = Downsample(d2)
        self.encoder_level3 = stage(num_blocks[2], d3, heads[2])
        self.down3_4 = Downsample(d3)
        self.latent = stage(num_blocks[3], d4, heads[3])

        self.prompt3 = prompt_block(p3, prompt_sizes[2], d4)
        self.noise_level3 = fuse(d4 + p3)
        self.reduce_noise_level3 = nn.Conv2d(d4 + p3, d3, kernel_size=1, bias=bias)
        self.up4_3 = Upsample(d3)
        self.reduce_chan_level3 = nn.Conv2d(d2 + d3, d3, kernel_size=1, bias=bias)
        self.decoder_level3 = stage(num_blocks[2], d3, heads[2])

        self.prompt2 = prompt_block(p2, prompt_sizes[1], d3)
        self.noise_level2 = fuse(d3 + p2)
        self.reduce_noise_level2 = nn.Conv2d(d3 + p2, d3, kernel_size=1, bias=bias)
        self.up3_2 = Upsample(d3)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage(num_blocks[1], d2, heads[1])

        self.prompt1 = prompt_block(p1, prompt_sizes[0], d2)
        self.noise_level1 = fuse(d2 + p1)
        self.reduce_noise_level1 = nn.Conv2d(d2 + p1, d2, kernel_size=1, bias=bias)
        self.up2_1 = Upsample(d2)
        self.decoder_level1 = stage(num_blocks[0], d2, heads[0])
        self.refinement = stage(num_refinement_blocks, d2, heads[0])
        self.output = nn.Conv2d(d2, out_channels, kernel_size=3, padding=1, bias=bias)

    # --- forward -------------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> EncoderFeatures:
        """Encoder and latent, (B, 3, H, W) -> :class:`EncoderFeatures`. Prompts do not enter here."""
        e1 = self.encoder_level1(self.patch_embed(x))
        e2 = self.encoder_level2(self.down1_2(e1))
        e3 = self.encoder_level3(self.down2_3(e2))
        return EncoderFeatures(e1, e2, e3, self.latent(self.down3_4(e3)))

    def decode(self, feats: EncoderFeatures, x: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """Prompted decoder, :class:`EncoderFeatures` -> (B, 3, H, W); ``x`` (B, 3, H, W) is the global residual."""
        lat = torch.cat([feats.latent, ctx.prompt("prompt3", feats.latent)], dim=1)
        lat = self.reduce_noise_level3(self.noise_level3(lat))
        d3 = self.reduce_chan_level3(torch.cat([self.up4_3(lat), feats.e3], dim=1))
        d3 = self.decoder_level3(d3)

        d3 = torch.cat([d3, ctx.prompt("prompt2", d3)], dim=1)
        d3 = self.reduce_noise_level2(self.noise_level2(d3))
        d2 = self.reduce_chan_level2(torch.cat([self.up3_2(d3), feats.e2], dim=1))
        d2 = self.decoder_level2(d2)

        d2 = torch.cat([d2, ctx.prompt("prompt1", d2)], dim=1)
        d2 = self.reduce_noise_level1(self.noise_level1(d2))
        d1 = torch.cat([self.up2_1(d2), feats.e1], dim=1)
        d1 = self.refinement(self.decoder_level1(d1))
        return self.output(d1) + x
