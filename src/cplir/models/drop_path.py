"""Stochastic depth (Huang et al., ECCV 2016), as used by the Swin-style backbones SwinIR and IDT."""

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero a residual branch for whole samples with probability ``drop_prob`` during training.

    Kept samples are divided by the keep probability so the expectation is unchanged; identity in eval mode.
    Works on any (B, ...) tensor.
    """

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


def drop_path_or_identity(drop_prob: float) -> nn.Module:
    """The published blocks hold an ``nn.Identity`` where the rate is 0, a :class:`DropPath` otherwise."""
    return DropPath(drop_prob) if drop_prob > 0.0 else nn.Identity()
