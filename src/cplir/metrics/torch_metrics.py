"""Batched PSNR / SSIM in torch for validation during training, equal to :mod:`cplir.metrics.protocols`.

Inputs are float tensors (B, 3, H, W) in [0, 1] on any device; results are (B,) tensors without gradient.
They reproduce the numpy protocols on the same images:

* ``basicsr_rgb`` / ``basicsr_y``: inputs are clipped and rounded to 8 bits first (``round(clip(x, 0, 1) · 255)``,
  as writing the image to a uint8 file and scoring it with :func:`~cplir.metrics.protocols.evaluate_pair` does).
* ``promptir``: inputs are clipped to [0, 1] and **not** quantised, as PromptIR's own test code scores the
  network's float output; they are centre-cropped to a multiple of 16 like the numpy path.

Computation runs in float64 (float32 on Apple MPS, which lacks float64) so CPU and CUDA agree with numpy to
~1e-10; SSIM uses depthwise separable ``conv2d`` on the valid region.
"""

import torch
import torch.nn.functional as F

from cplir.errors import MetricInputError
from cplir.metrics.protocols import (
    BT601_Y_WEIGHTS,
    center_crop_box,
    check_crop_border,
    check_promptir_size,
    check_protocol,
    check_window,
    ssim_settings,
)


def protocol_rgb(image: torch.Tensor, protocol: str, crop_border: int) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] -> the RGB pixels the protocol scores, (B, 3, H', W'), without gradient:
    ``promptir``: clipped, centre-cropped to a multiple of 16, on [0, 1]; ``basicsr_*``: rounded to 8 bits and
    border-cropped, on [0, 255]."""
    dtype = torch.float32 if image.device.type == "mps" else torch.float64
    image = image.detach().to(dtype).clamp(0.0, 1.0)
    if protocol == "promptir":
        top, left, height, width = center_crop_box(image.shape[2], image.shape[3])
        return image[:, :, top : top + height, left : left + width]
    image = torch.round(image * 255.0)
    if crop_border:
        image = image[:, :, crop_border:-crop_border, crop_border:-crop_border]
    return image


def _prepare(image: torch.Tensor, protocol: str, crop_border: int) -> torch.Tensor:
    """(B, 3, H, W) float in [0, 1] -> (B, C, H', W') in the protocol's value scale, C = 1 for ``basicsr_y``."""
    image = protocol_rgb(image, protocol, crop_border)
    if protocol == "basicsr_y":
        weights = torch.tensor(BT601_Y_WEIGHTS, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
        return 16.0 + (image / 255.0 * weights).sum(dim=1, keepdim=True)
    return image


def check_pair(restored: torch.Tensor, target: torch.Tensor, protocol: str, crop_border: int) -> None:
    """Reject a batch pair the protocol is not defined for (see :func:`psnr_torch`)."""
    check_protocol(protocol)
    for name, image in (("restored", restored), ("target", target)):
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise MetricInputError(f"{name} must be a tensor of shape (B, 3, H, W), got {shape}")
        if not image.is_floating_point():
            raise MetricInputError(f"{name} must be a float tensor in [0, 1], got {image.dtype}")
    if restored.shape != target.shape:
        raise MetricInputError(
            f"restored and target differ in shape: {tuple(restored.shape)} vs {tuple(target.shape)}; "
            "metrics need the restored batch at the size of its ground truth"
        )
    if protocol == "promptir":
        if crop_border:
            raise MetricInputError("the promptir protocol has no border crop; pass crop_border=0")
        check_promptir_size(restored.shape[2], restored.shape[3])
    else:
        check_crop_border(crop_border, restored.shape[2:])


def _prepare_pair(restored: torch.Tensor, target: torch.Tensor, protocol: str, crop_border: int) -> tuple:
    check_pair(restored, target, protocol, crop_border)
    return _prepare(restored, protocol, crop_border), _prepare(target, protocol, crop_border)


def psnr_torch(restored: torch.Tensor, target: torch.Tensor, protocol: str, crop_border: int = 0) -> torch.Tensor:
    """PSNR (dB) per image under ``protocol``: (B, 3, H, W) pair -> (B,); ``inf`` where the pair is identical."""
    x, y = _prepare_pair(restored, target, protocol, crop_border)
    peak = 1.0 if protocol == "promptir" else 255.0
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(peak**2 / mse)


def _valid_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise separable correlation with the outer product of ``kernel`` (k,), valid region:
    (B, C, H, W) -> (B, C, H - k + 1, W - k + 1)."""
    channels, k = x.shape[1], kernel.numel()
    x = F.conv2d(x, kernel.view(1, 1, k, 1).expand(channels, 1, k, 1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, 1, k).expand(channels, 1, 1, k), groups=channels)


def ssim_torch(restored: torch.Tensor, target: torch.Tensor, protocol: str, crop_border: int = 0) -> torch.Tensor:
    """SSIM per image under ``protocol``: (B, 3, H, W) pair -> (B,), averaged over channels."""
    x, y = _prepare_pair(restored, target, protocol, crop_border)
    kernel_np, c1, c2, cov_norm = ssim_settings(protocol)
    check_window(x.shape[2:], len(kernel_np), protocol)
    kernel = torch.from_numpy(kernel_np).to(dtype=x.dtype, device=x.device)
    mu_x, mu_y = _valid_filter(x, kernel), _valid_filter(y, kernel)
    var_x = cov_norm * (_valid_filter(x * x, kernel) - mu_x * mu_x)
    var_y = cov_norm * (_valid_filter(y * y, kernel) - mu_y * mu_y)
    cov_xy = cov_norm * (_valid_filter(x * y, kernel) - mu_x * mu_y)
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(2, 3)).mean(dim=1)
