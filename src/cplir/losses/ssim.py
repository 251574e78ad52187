"""SSIM as a training loss: IDT's reconstruction objective (jiexiaou/IDT ``train_derain.py`` minimises −SSIM).

The SSIM of IDT's ``loss/SSIM.py`` (the widespread pytorch-ssim form): an 11×11 Gaussian window with σ = 1.5 per
channel, zero padding to keep the size, ``C1 = 0.01²`` and ``C2 = 0.03²`` (data range 1), averaged over every pixel,
channel and sample. This differs from the metric SSIM of the protocols (valid region, 8-bit images,
:mod:`cplir.metrics.protocols`): it is the training loss only.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW = 11
SIGMA = 1.5
C1, C2 = 0.01 ** 2, 0.03 ** 2


def gaussian_window(channels: int, size: int = WINDOW, sigma: float = SIGMA) -> Tensor:
    """The (channels, 1, size, size) normalised Gaussian kernel of a depthwise convolution."""
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    line = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    line = line / line.sum()
    return torch.outer(line, line).expand(channels, 1, size, size).contiguous()


def ssim_value(restored: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM of ``restored`` and ``target`` (B, C, H, W) in [0, 1], differentiable (module docstring)."""
    channels = restored.shape[1]
    window = gaussian_window(channels).to(restored)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, window, padding=WINDOW // 2, groups=channels)

    mu1, mu2 = blur(restored), blur(target)
    var1 = blur(restored * restored) - mu1 * mu1
    var2 = blur(target * target) - mu2 * mu2
    cov = blur(restored * target) - mu1 * mu2
    ssim_map = (2 * mu1 * mu2 + C1) * (2 * cov + C2) / ((mu1 * mu1 + mu2 * mu2 + C1) * (var1 + var2 + C2))
    return ssim_map.mean()


def ssim_loss(restored: Tensor, target: Tensor) -> Tensor:
    """``1 − SSIM``: IDT's −SSIM shifted by a constant (the same gradient), zero for a perfect restoration."""
    return 1 - ssim_value(restored, target)
