"""A fixed multi-scale pixel/gradient pyramid: a feature space φ for CPR that needs no trained network.

Without ImageNet weights (nothing is downloaded), the VGG of CPR can only be random, and a random VGG's distances
are orders of magnitude too small to move a network (docs/benchmarks.md, "CPR gradient"). This pyramid is the
download-free alternative of ``loss.cpr.features: pyramid``: it compares colours and edges at four scales.
"""

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

PYRAMID_LEVELS = 4


class PixelGradientPyramid(nn.Module):
    """(B, 3, H, W) -> ``{"level0": (B, 9, H, W), "level1": (B, 9, H/2, W/2), ...}``: at each level the image
    average-pooled 2^l times, with its horizontal and vertical forward differences (zero in the last column / row).

    Exposes the interface of :class:`cplir.losses.vgg.VGGFeatures` that the losses read (``layers``,
    ``random_weights``, ``weights_source``); it has no parameters.
    """

    random_weights = False
    weights_source = "none (fixed pixel/gradient pyramid)"

    def __init__(self, levels: int = PYRAMID_LEVELS):
        super().__init__()
        self.layers = tuple(f"level{i}" for i in range(levels))

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        out = {}
        for i, name in enumerate(self.layers):
            if i:
                x = F.avg_pool2d(x, 2, ceil_mode=True)
            dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))
            dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
            out[name] = torch.cat([x, dx, dy], dim=1)
        return out
