"""Global routing for tiled inference.

A prompt block chooses its components from the global average of its feature map (PromptIR Sec. 3.1; the Sparse
Prompt Module keeps the top-k, CPL Sec. III-B). Restored tile by tile, every tile would choose for itself: a sky
tile may pick another prompt than a textured one, and the choice would change at tile borders. Global routing
computes the routing once on the whole image, downscaled to at most ``max_side`` pixels per side so that it fits
in memory, and imposes it on every tile (``model(tile, routing=...)``).
"""

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import ConfigError
from cplir.inference.padding import model_multiple, pad_to_multiple
from cplir.models.prompted import PromptedBackbone, sparse_prompt_blocks

ROUTING_MODES = ("auto", "global", "tile")
GLOBAL_ROUTING_MAX_SIDE = 512


def has_prompts(model: nn.Module) -> bool:
    return isinstance(model, PromptedBackbone) and bool(model.prompt_names)


def resolve_routing_mode(model: nn.Module, mode: str = "auto") -> str:
    """``"global"`` or ``"tile"``; ``"auto"`` is global for a model with Sparse Prompt Modules (a top-k choice
    flips between tiles; a dense mixture only drifts) and per tile otherwise."""
    if mode not in ROUTING_MODES:
        raise ConfigError(f"unknown routing mode {mode!r}; use one of {', '.join(ROUTING_MODES)}")
    if mode == "auto":
        return "global" if sparse_prompt_blocks(model) else "tile"
    return mode


def downscale(x: torch.Tensor, max_side: int) -> torch.Tensor:
    """(B, C, H, W) shrunk by area averaging so that neither side exceeds ``max_side`` (aspect kept)."""
    h, w = x.shape[-2:]
    factor = max_side / max(h, w)
    if factor >= 1:
        return x
    return F.interpolate(x, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="area")


def global_routing(model: PromptedBackbone, x: torch.Tensor,
                   max_side: int = GLOBAL_ROUTING_MAX_SIDE) -> Dict[str, torch.Tensor]:
    """Routing probabilities ``{block: (B, P)}`` of ``x`` (B, C, H, W) seen whole, downscaled to at most
    ``max_side`` pixels per side and padded to the model's size multiple."""
    small = downscale(x, max_side)
    return model.route(pad_to_multiple(small, model_multiple(model)))
