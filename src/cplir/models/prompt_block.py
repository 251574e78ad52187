"""PromptIR's dense prompt block (PromptGenBlock, SPEC §1).

A router (global average pool -> linear -> softmax over P components) mixes P learned prompt components of shape
(C_p, S, S); the mixture is resized to the feature map and passed through a 3x3 convolution.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class PromptGenBlock(nn.Module):
    """Dense prompt block: every component weighted by its softmax probability.

    Input (B, lin_dim, H, W) decoder feature; output (B, prompt_dim, H, W) prompt. After each forward pass
    ``last_probs`` (B, P) holds the routing probabilities and ``last_indices`` (B, k) the selected components
    (for the dense block: the arg-max, k=1), both detached, for the analyses.
    """

    def __init__(self, prompt_dim: int = 128, prompt_len: int = 5, prompt_size: int = 96, lin_dim: int = 192):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)
        self.last_probs: Optional[torch.Tensor] = None
        self.last_indices: Optional[torch.Tensor] = None
        self.last_mismatched = False

    @property
    def num_prompts(self) -> int:
        return self.prompt_param.shape[1]

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Routing probabilities (B, P) from the global average of the feature (B, C, H, W)."""
        return F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)

    def render(self, mixed: torch.Tensor, size) -> torch.Tensor:
        """Mixed components (B, C_p, S, S) -> prompt (B, C_p, H, W)."""
        return self.conv3x3(F.interpolate(mixed, size=size, mode="bilinear", align_corners=False))

    def _record(self, probs, indices, mismatched: bool):
        self.last_probs = probs.detach()
        self.last_indices = indices.detach()
        self.last_mismatched = mismatched

    def forward(self, x: torch.Tensor, mismatch: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mismatch is not None:
            raise ValueError("the dense PromptIR prompt block has no mismatched-prompt mode; use the sparse prompt "
                             "module (model 'cplir') for contrastive prompt regularisation")
        probs = self.route(x)
        self._record(probs, probs.argmax(dim=1, keepdim=True), mismatched=False)
        components = self.prompt_param[0]  # (P, C_p, S, S)
        mixed = (probs.to(components.dtype) @ components.flatten(1)).view(-1, *components.shape[1:])
        return self.render(mixed, x.shape[-2:])
