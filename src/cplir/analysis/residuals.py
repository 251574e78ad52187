"""Residual maps (CPL Fig. 5): how much a restoration changes when the prompts are mismatched.

The matched output is the normal forward pass. Mismatched prompt r (r = 0 … P−k−1) makes every prompt block use,
instead of its selection, its r-th component (in index order) among those outside the matched pass's top-k,
weighted by the routing probability the matched pass gave that component: the negatives of Contrastive Prompt
Regularisation (CPL Sec. III-C) with a fixed choice, imposed through ``routing`` so dense (PromptIR) and sparse
(CPL) blocks are treated alike. If the mismatched outputs barely differ, the prompts carry little of the task.
"""

from dataclasses import dataclass
from typing import Dict, List

import torch
from torch import nn

from cplir.inference.padding import model_multiple, pad_to_multiple


@dataclass
class MismatchedOutputs:
    """Outputs (B, C, H, W) with the matched prompts and with each mismatched prompt r; ``selected`` holds the
    matched pass's components ``{block: (B, k)}``, ``components[r]`` those of mismatch r, ``{block: (B,)}``."""

    matched: torch.Tensor
    selected: Dict[str, torch.Tensor]
    mismatched: List[torch.Tensor]
    components: List[Dict[str, torch.Tensor]]


def mismatched_routing(probs: torch.Tensor, selected: torch.Tensor, r: int):
    """Imposed routing (B, P) using, per sample, the r-th component outside ``selected`` (B, k) (wrapping when
    r ≥ P − k) with its own probability, and that component (B,)."""
    b, p = probs.shape
    outside = torch.ones_like(probs, dtype=torch.bool).scatter(1, selected, False)
    rest = torch.arange(p, device=probs.device).expand(b, p)[outside].view(b, -1)
    component = rest[:, r % rest.shape[1]]
    keep = torch.zeros_like(probs).scatter(1, component[:, None], 1.0)
    return probs * keep, component


@torch.no_grad()
def mismatched_outputs(model: nn.Module, x: torch.Tensor, pad_multiple: int = 1,
                       pad_mode: str = "reflect") -> MismatchedOutputs:
    """The matched and every mismatched output of ``model`` (eval mode) for ``x`` (B, C, H, W), padded as
    evaluation pads and cropped back. Needs prompt blocks with at least k + 1 components."""
    model.eval()
    h, w = x.shape[-2:]
    scale = int(getattr(model, "scale", 1) or 1)
    x = pad_to_multiple(x, model_multiple(model, pad_multiple), pad_mode)
    matched, record = model(x, return_routing=True)
    count = min(r["probs"].shape[1] - r["indices"].shape[1] for r in record.values()) if record else 0
    outputs, components = [], []
    for r in range(count):
        routing, chosen = {}, {}
        for name, rec in record.items():
            routing[name], chosen[name] = mismatched_routing(rec["probs"], rec["indices"], r)
        outputs.append(model(x, routing=routing)[..., :h * scale, :w * scale])
        components.append(chosen)
    return MismatchedOutputs(matched[..., :h * scale, :w * scale], {name: rec["indices"] for name, rec in
                                                                     record.items()}, outputs, components)
