"""Restormer backbone (Zamir et al., CVPR 2022), exact to the published ``restormer_arch.py``, optionally with
prompts in its decoder.

Without prompts (``prompt=None``, the default) module names, state-dict keys, shapes and numerics equal the
published ``Restormer`` class, so its released checkpoints load unchanged. With ``prompt="dense"|"sparse"`` a
prompt block enters before each of the three upsamplings, as in PromptIR (:mod:`cplir.models.decoder_prompts`);
unlike PromptIR, the fused feature is reduced back to the width of its level, so every published layer keeps its
shape.
"""

from typing import Optional, Sequence

from cplir.errors import ConfigError
from cplir.models.promptir import PUBLISHED_PROMPT_SIZES, default_prompt_dims
from cplir.models.registry import register_model
from cplir.models.restormer_blocks import TransformerBlock, transformer_stage
from cplir.models.restormer_unet import RestormerUNet


class Restormer(RestormerUNet):
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
    H and W must be multiples of 8 (pad with :func:`cplir.inference.pad_to_multiple`). The layout, encode and
    decode are :class:`~cplir.models.restormer_unet.RestormerUNet`'s.
    """

    def __init__(self, inp_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8), num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8), ffn_expansion_factor: float = 2.66, bias: bool = False,
                 LayerNorm_type: str = "WithBias", dual_pixel_task: bool = False, prompt: Optional[str] = None,
                 prompt_dims: Optional[Sequence[int]] = None, prompt_sizes: Sequence[int] = PUBLISHED_PROMPT_SIZES,
                 num_prompts: int = 5, top_k: int = 1, renormalize: bool = False):
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ConfigError("Restormer's num_blocks and heads need one entry per level (4 each)")
        if dim % 2 or dim < 2:
            raise ConfigError(f"Restormer's dim must be a positive even number, got {dim}")

        def stage(n, width, level):
            return transformer_stage(n, width, heads[level], ffn_expansion_factor, bias, LayerNorm_type)

        # published: patch_embed never has a bias, whatever `bias` says (RestormerUNet builds it without)
        super().__init__(inp_channels, out_channels, dim, num_blocks, stage,
                         refinement=stage(num_refinement_blocks, 2 * dim, 0), bias=bias,
                         dual_pixel_task=dual_pixel_task)
        fuse_heads = heads[2]  # PromptIR fuses prompts with heads[2] heads at every level
        dims = prompt_dims if prompt_dims is not None else default_prompt_dims(dim, fuse_heads)
        self.add_prompts(prompt, self.level_widths(), dims, prompt_sizes,
                         lambda width: TransformerBlock(width, fuse_heads, ffn_expansion_factor, bias, LayerNorm_type),
                         num_prompts, top_k, renormalize, bias)


@register_model("restormer")
def restormer(**kwargs) -> Restormer:
    """Restormer (Zamir et al., CVPR 2022): published constructor arguments, plus ``prompt`` for decoder prompts."""
    return Restormer(**kwargs)
