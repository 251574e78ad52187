"""Toy networks for the inference tests: small receptive fields, so tiled and whole-image outputs can be compared
exactly, and a router whose choice is known (it follows the image's brightness)."""

import torch
import torch.nn.functional as F
from torch import nn

from cplir.models import PromptedBackbone, SparsePromptModule


class ToyConv(PromptedBackbone):
    """Two 3x3 convolutions (receptive radius 2) plus the input; ``scale`` > 1 repeats pixels (nearest)."""

    def __init__(self, scale: int = 1, size_multiple: int = 1, channels: int = 3):
        super().__init__()
        self.scale, self.size_multiple = scale, size_multiple
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, channels, 3, padding=1)

    def decode(self, feats, x, ctx):
        y = self.conv2(torch.relu(self.conv1(x))) + x
        return F.interpolate(y, scale_factor=self.scale, mode="nearest") if self.scale > 1 else y


class ToyRouted(ToyConv):
    """ToyConv fed with a prompt from a Sparse Prompt Module on the image itself: component 1 is selected when the
    image's mean brightness exceeds 0.5, component 0 otherwise."""

    def __init__(self, scale: int = 1):
        super().__init__(scale=scale)
        self.conv1 = nn.Conv2d(6, 8, 3, padding=1)
        self.prompt = SparsePromptModule(prompt_dim=3, prompt_len=2, prompt_size=4, lin_dim=3)
        with torch.no_grad():
            self.prompt.linear_layer.weight.copy_(torch.tensor([[-20.0] * 3, [20.0] * 3]))
            self.prompt.linear_layer.bias.copy_(torch.tensor([30.0, -30.0]))
            self.prompt.prompt_param.copy_(torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])[None])
        self.prompt_names = ("prompt",)

    def decode(self, feats, x, ctx):
        y = self.conv2(torch.relu(self.conv1(torch.cat([x, ctx.prompt("prompt", x)], dim=1)))) + x
        return F.interpolate(y, scale_factor=self.scale, mode="nearest") if self.scale > 1 else y


def half_dark_image(height: int = 32, width: int = 64) -> torch.Tensor:
    """(1, 3, H, W): the left half dark (0.1), the right half bright (0.9), mean brightness 0.5 - a little."""
    x = torch.full((1, 3, height, width), 0.9)
    x[..., : width // 2 + 2] = 0.1
    return x
