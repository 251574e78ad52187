"""ImageNet AlexNet ``features`` (the trunk of LPIPS-alex), with torchvision's module numbering.

torchvision's ``alexnet-owt-7be5be79.pth`` (full or ``features.*`` only) loads unchanged; it is never downloaded
(see :mod:`cplir.pretrained`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from cplir.pretrained import PretrainedFile
from cplir.seeding import torch_generator

ALEXNET_FILE = PretrainedFile(
    what="torchvision's ImageNet AlexNet weights", file_name="alexnet-owt-7be5be79.pth",
    env_var="CPLIR_ALEXNET_WEIGHTS", config_hint="eval.lpips.backbone_weights",
    random_hint="Without them LPIPS is reported as n/a.")
# Indices of the ReLUs LPIPS reads (its relu1..relu5 slices end after modules 1, 4, 7, 9, 11).
RELU_INDICES = (1, 4, 7, 9, 11)
CHANNELS = (64, 192, 384, 256, 256)


class AlexNetFeatures(nn.Module):
    """``torchvision.models.alexnet().features`` up to its last ReLU; frozen, always in eval mode.

    Args:
        weights: a torchvision weight file, or ``"random"`` (a seeded random trunk, for tests).
        seed: seed of the random initialisation.
    """

    def __init__(self, weights: str | Path, seed: int = 0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )
        self.random_weights = isinstance(weights, str) and weights == "random"
        if self.random_weights:
            generator = torch_generator(seed)
            with torch.no_grad():
                for module in self.features:
                    if isinstance(module, nn.Conv2d):
                        fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                        module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                            * math.sqrt(2.0 / fan_out))
                        module.bias.zero_()
        else:
            ALEXNET_FILE.load_into(self.features, Path(weights), prefix="features.")
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> AlexNetFeatures:
        return super().train(False)  # a frozen metric trunk

    def forward(self, x: Tensor) -> list[Tensor]:
        """The five ReLU outputs of ``x`` (B, 3, H, W), already normalised as the caller's metric wants."""
        outputs = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in RELU_INDICES:
                outputs.append(x)
        return outputs

