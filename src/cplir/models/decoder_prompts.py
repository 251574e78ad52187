"""Prompts in a backbone's decoder, the PromptIR pattern, for backbones published without prompts.

Before each upsampling of the decoder, the prompt block reads the feature (B, c, h, w) and returns a prompt
(B, c_p, h, w); the two are concatenated, fused by one block of the backbone's own kind at width c + c_p, and a
1x1 convolution reduces the result back to c. The published layers keep their widths, so with prompts the
backbone's published weights still load (strict=False; only the prompt layers are new). See docs/backbones.md.
"""

from typing import Callable, Dict, Optional, Sequence

import torch
from torch import nn

from cplir.errors import ConfigError
from cplir.models.prompt_block import PromptGenBlock
from cplir.models.prompted import PromptContext, PromptedBackbone
from cplir.models.sparse_prompt import SparsePromptModule

PROMPT_KINDS = (None, "dense", "sparse")


def check_prompt_kind(prompt: Optional[str]) -> None:
    if prompt not in PROMPT_KINDS:
        raise ConfigError(f"prompt must be None (no prompts), 'dense' (PromptIR's prompt block) or 'sparse' "
                          f"(CPL's Sparse Prompt Module), got {prompt!r}")


def make_prompt_block(prompt: str, prompt_dim: int, num_prompts: int, prompt_size: int, lin_dim: int,
                      top_k: int = 1, renormalize: bool = False) -> PromptGenBlock:
    """A dense ``PromptGenBlock`` or a sparse ``SparsePromptModule`` (top-k routing; CPR-capable)."""
    if prompt == "dense":
        return PromptGenBlock(prompt_dim, num_prompts, prompt_size, lin_dim)
    return SparsePromptModule(prompt_dim, num_prompts, prompt_size, lin_dim, top_k=top_k, renormalize=renormalize)


class PromptFusion(nn.Module):
    """``reduce(block(cat(feature, prompt)))``: (B, c, H, W) and (B, c_p, H, W) -> (B, c, H, W).

    ``block`` works at width c + c_p (a transformer block for Restormer, a NAFBlock for NAFNet); ``reduce`` is the
    1x1 convolution back to c.
    """

    def __init__(self, block: nn.Module, width: int, prompt_dim: int, bias: bool):
        super().__init__()
        self.block = block
        self.reduce = nn.Conv2d(width + prompt_dim, width, kernel_size=1, bias=bias)

    def forward(self, feature: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.block(torch.cat([feature, prompt], dim=1)))


class DecoderPromptedBackbone(PromptedBackbone):
    """A backbone whose prompts enter its decoder as above: block ``prompt{level}`` fused by ``fuse{level}``.

    The subclass builds its published layers, adds each level's prompt with :meth:`add_prompt` (when it has
    prompts) and, in ``decode``, passes the feature before each upsampling through :meth:`with_prompt`.
    """

    shares_encoder = True  # prompts enter only in the decoder

    def add_prompt(self, level: int, block: PromptGenBlock, fusion: PromptFusion) -> None:
        setattr(self, f"prompt{level}", block)
        setattr(self, f"fuse{level}", fusion)

    def with_prompt(self, level: int, feature: torch.Tensor, ctx: PromptContext) -> torch.Tensor:
        """``feature`` (B, c, H, W) fused with the prompt of level ``level``; unchanged without prompts."""
        if not self.prompt_names:
            return feature
        return getattr(self, f"fuse{level}")(feature, ctx.prompt(f"prompt{level}", feature))

    def add_prompts(self, prompt: Optional[str], widths: Dict[int, int], prompt_dims: Sequence[int],
                    prompt_sizes: Sequence[int], fusion_block: Callable[[int], nn.Module], num_prompts: int = 5,
                    top_k: int = 1, renormalize: bool = False, bias: bool = False) -> None:
        """Prompts at every level n of ``widths`` ({n: width of the feature read there}, in decoder order), or
        none when ``prompt`` is None. ``prompt_dims[n-1]`` and ``prompt_sizes[n-1]`` are level n's prompt width
        and component size; ``fusion_block(width)`` builds the backbone's own block at the fused width."""
        check_prompt_kind(prompt)
        self.prompt_names = tuple(f"prompt{n}" for n in widths) if prompt else ()
        if not prompt:
            return
        if len(prompt_dims) != len(widths) or len(prompt_sizes) != len(widths):
            raise ConfigError(f"prompt_dims and prompt_sizes need one entry per prompt block ({len(widths)}: "
                              f"prompt1..prompt{len(widths)}), got {list(prompt_dims)} and {list(prompt_sizes)}")
        for n, width in widths.items():
            p_dim = prompt_dims[n - 1]
            block = make_prompt_block(prompt, p_dim, num_prompts, prompt_sizes[n - 1], width, top_k, renormalize)
            self.add_prompt(n, block, PromptFusion(fusion_block(width + p_dim), width, p_dim, bias))
