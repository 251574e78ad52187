"""PromptIR's dense prompt block (PromptGenBlock; PromptIR, Potlapalli et al. 2023, Sec. 3.1).

A router (global average pool -> linear -> softmax over P components) mixes P learned prompt components of shape
(C_p, S, S); the mixture is resized to the feature map and passed through a 3x3 convolution.
"""

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from cplir.errors import InputSizeError
from cplir.models.prompted import PromptOutput


class PromptGenBlock(nn.Module):
    """Dense prompt block: every component weighted by its softmax probability.

    Input (B, lin_dim, H, W) decoder feature; output a :class:`~cplir.models.prompted.PromptOutput`: the prompt
    (B, prompt_dim, H, W), the routing probabilities (B, P) and the selected components (B, k) (for the dense
    block: the arg-max, k=1). ``probs`` (B, P) given to ``forward`` replaces the router's own output.
    """

    def __init__(self, prompt_dim: int = 128, prompt_len: int = 5, prompt_size: int = 96, lin_dim: int = 192):
        super().__init__()
        self.prompt_param = nn.Parameter(torch.rand(1, prompt_len, prompt_dim, prompt_size, prompt_size))
        self.linear_layer = nn.Linear(lin_dim, prompt_len)
        self.conv3x3 = nn.Conv2d(prompt_dim, prompt_dim, kernel_size=3, padding=1, bias=False)

    @property
    def num_prompts(self) -> int:
        return self.prompt_param.shape[1]

    def route(self, x: torch.Tensor) -> torch.Tensor:
        """Routing probabilities (B, P) from the global average of the feature (B, C, H, W)."""
        return F.softmax(self.linear_layer(x.mean(dim=(-2, -1))), dim=1)

    def render(self, mixed: torch.Tensor, size) -> torch.Tensor:
        """Mixed components (B, C_p, S, S) -> prompt (B, C_p, H, W)."""
        return self.conv3x3(F.interpolate(mixed, size=size, mode="bilinear", align_corners=False))

    def forward(self, x: torch.Tensor, mismatch: Optional[torch.Tensor] = None,
                probs: Optional[torch.Tensor] = None) -> PromptOutput:
        if mismatch is not None:
            raise InputSizeError("the dense PromptIR prompt block has no mismatched-prompt mode; use sparse prompts "
                                 "(model 'cplir', or prompt='sparse') for contrastive prompt regularisation")
        probs = self.route(x) if probs is None else probs
        components = self.prompt_param[0]  # (P, C_p, S, S)
        mixed = (probs.to(components.dtype) @ components.flatten(1)).view(-1, *components.shape[1:])
        return PromptOutput(self.render(mixed, x.shape[-2:]), probs, probs.argmax(dim=1, keepdim=True))
