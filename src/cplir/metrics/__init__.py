"""Image quality metrics under named protocols (docs/design.md §6): numpy reference versions and batched torch
versions."""

from cplir.metrics.protocols import (
    PROTOCOLS,
    center_crop_to_multiple,
    evaluate_pair,
    psnr_basicsr,
    psnr_promptir,
    rgb_to_y,
    ssim_basicsr,
    ssim_promptir,
)
from cplir.metrics.torch_metrics import psnr_torch, ssim_torch

__all__ = [
    "PROTOCOLS",
    "center_crop_to_multiple",
    "evaluate_pair",
    "psnr_basicsr",
    "psnr_promptir",
    "psnr_torch",
    "rgb_to_y",
    "ssim_basicsr",
    "ssim_promptir",
    "ssim_torch",
]
