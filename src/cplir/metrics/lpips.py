"""LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018), v0.1.

The computation of richzhang/PerceptualSimilarity's ``lpips.LPIPS`` (``lpips=True, spatial=False``):

1. inputs in [0, 1] are mapped to [-1, 1], then ``ScalingLayer``: ``(x − shift) / scale`` with
   shift (−0.030, −0.088, −0.188) and scale (0.458, 0.448, 0.450);
2. five ReLU outputs of an ImageNet trunk: AlexNet relu1..relu5 (64, 192, 384, 256, 256 channels) or VGG16
   relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (64, 128, 256, 512, 512);
3. each feature vector scaled to unit length over channels, ``f / (‖f‖₂ + 1e-10)``;
4. squared difference, a learned 1×1 convolution without bias to one channel (``lin0``..``lin4``), spatial mean;
5. the sum over the five layers: one distance per image pair.

The heads keep the published module names, ``linK.model.1.weight`` (``model`` = dropout, conv; dropout is inactive
at evaluation), so the package's ``weights/v0.1/alex.pth`` and ``vgg.pth`` load unchanged. Trunk and heads come
from user-supplied files only (:mod:`cplir.pretrained`); the ``lpips`` package, if installed, is searched for its
head files but never imported (its import needs torchvision). :func:`build_lpips` returns ``None`` and the reason
when a file is missing, and reports then show ``n/a``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from cplir.losses.vgg import VGG_FILES, VGGFeatures
from cplir.metrics.alexnet import ALEXNET_FILE, AlexNetFeatures
from cplir.metrics.alexnet import CHANNELS as ALEX_CHANNELS
from cplir.metrics.torch_metrics import check_pair, protocol_rgb
from cplir.pretrained import PretrainedFile
from cplir.seeding import torch_generator

NETS = ("alex", "vgg")
VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
CHANNELS = {"alex": ALEX_CHANNELS, "vgg": (64, 128, 256, 512, 512)}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
NOT_AVAILABLE = "Without them LPIPS is reported as n/a."
TRUNK_FILES = {"alex": ALEXNET_FILE,
               "vgg": dataclasses.replace(VGG_FILES["vgg16"], config_hint="eval.lpips.backbone_weights",
                                          random_hint=NOT_AVAILABLE)}
HEAD_FILES = {
    net: PretrainedFile(
        what=f"the LPIPS v0.1 linear heads for {'AlexNet' if net == 'alex' else 'VGG16'} (the lpips package's "
             f"lpips/weights/v0.1/{net}.pth)",
        file_name=f"lpips/v0.1/{net}.pth", env_var=f"CPLIR_LPIPS_{net.upper()}_HEADS",
        config_hint="eval.lpips.head_weights", random_hint=NOT_AVAILABLE)
    for net in NETS
}


def _packaged_heads(net: str) -> Optional[Path]:
    """The head file inside an installed ``lpips`` package, found without importing it."""
    try:
        spec = importlib.util.find_spec("lpips")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "weights" / "v0.1" / f"{net}.pth"
    return path if path.is_file() else None


class LinearHead(nn.Module):
    """LPIPS's ``NetLinLayer``: dropout then a 1×1 convolution C → 1 without bias, (B, C, h, w) -> (B, 1, h, w)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS distance, frozen and always in eval mode.

    Args:
        net: ``"alex"`` or ``"vgg"`` (VGG16).
        backbone_weights: torchvision weight file of the trunk, or ``"random"`` (tests only).
        head_weights: the published head file of ``net``, or ``"random"`` (tests only).
        seed: seed of random trunk and heads.
    """

    def __init__(self, net: str, backbone_weights: str | Path, head_weights: str | Path, seed: int = 0):
        super().__init__()
        if net not in NETS:
            raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")
        self.net = net
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        if net == "alex":
            self.trunk = AlexNetFeatures(backbone_weights, seed=seed)
        else:
            self.trunk = VGGFeatures("vgg16", layers=VGG_LAYERS, weights=backbone_weights, normalize_input=False,
                                     seed=seed)
        for k, channels in enumerate(CHANNELS[net]):
            self.add_module(f"lin{k}", LinearHead(channels))
        heads = nn.ModuleDict({f"lin{k}": getattr(self, f"lin{k}") for k in range(len(CHANNELS[net]))})
        random_heads = isinstance(head_weights, str) and head_weights == "random"
        if random_heads:
            generator = torch_generator(seed, 1)
            with torch.no_grad():
                for head in heads.values():
                    weight = head.model[1].weight
                    weight.copy_(torch.rand(weight.shape, generator=generator))  # published heads are >= 0
        else:
            HEAD_FILES[net].load_into(heads, Path(head_weights))
        self.random_weights = random_heads or self.trunk.random_weights
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)  # a metric: dropout stays off

    def _features(self, x: Tensor) -> list:
        x = ((2 * x - 1) - self.shift) / self.scale
        feats = self.trunk(x)
        return [feats[name] for name in VGG_LAYERS] if self.net == "vgg" else feats

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distance per image pair: ``x``, ``y`` (B, 3, H, W) RGB in [0, 1] -> (B,)."""
        total = 0.0
        for k, (fx, fy) in enumerate(zip(self._features(x), self._features(y))):
            fx = fx / (fx.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}")((fx - fy).square()).mean(dim=(2, 3))
        return total[:, 0]


def lpips_torch(metric: LPIPS, restored: Tensor, target: Tensor, protocol: str, crop_border: int = 0) -> Tensor:
    """LPIPS per image on the RGB pixels ``protocol`` scores (8-bit rounded and border-cropped for ``basicsr_*``,
    centre-cropped for ``promptir``): (B, 3, H, W) pair in [0, 1] -> (B,)."""
    check_pair(restored, target, protocol, crop_border)
    peak = 1.0 if protocol == "promptir" else 255.0
    dtype = next(metric.parameters()).dtype
    x, y = (protocol_rgb(image, protocol, crop_border).div(peak).to(dtype) for image in (restored, target))
    return metric(x, y)


def build_lpips(net: str = "alex", backbone_weights: str = "", head_weights: str = "") \
        -> Tuple[Optional[LPIPS], str]:
    """``(metric, "")`` when trunk and head files are found, else ``(None, reason)`` for an ``n/a`` column.

    Empty strings search the usual places (environment variable, ``$TORCH_HOME/hub/checkpoints/``, and for the
    heads an installed ``lpips`` package). A path that is given but missing raises
    :class:`~cplir.errors.CheckpointError`.
    """
    trunk_file = TRUNK_FILES[net]
    trunk = trunk_file.locate(backbone_weights or None)
    heads = HEAD_FILES[net].locate(head_weights or None) or _packaged_heads(net)
    missing = [file.where_to_put() for file, found in ((trunk_file, trunk), (HEAD_FILES[net], heads))
               if found is None]
    if missing:
        return None, "LPIPS n/a: " + " ".join(missing)
    return LPIPS(net, trunk, heads), ""
