"""MiOIR super-resolution input: bicubic down ×1/scale, then bicubic up to the original size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cplir.data.degradations._common import check_image, check_rng, to_uint8

SR_MODES = ("torch", "pil")


def _torch_down_up(img: np.ndarray, scale: int) -> np.ndarray:
    """MiOIR's ``resize_tensor``: ``F.interpolate(scale_factor=1/scale, mode="bicubic")`` (no antialiasing; the
    sampling grid follows the factor, not the rounded size), then bicubic up to (H, W), in floating point."""
    h, w = img.shape[:2]
    t = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None]
    small = F.interpolate(t, scale_factor=1 / scale, mode="bicubic", align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()


def _pil_down_up(img: np.ndarray, scale: int) -> np.ndarray:
    """Pillow's bicubic (antialiased when shrinking, close to MATLAB imresize) down to (H//scale, W//scale) and
    back, channel by channel on 32-bit float images so the small image is not rounded either."""
    h, w = img.shape[:2]
    channels = []
    for c in range(3):
        plane = Image.fromarray(img[..., c].astype(np.float32), mode="F")
        small = plane.resize((w // scale, h // scale), Image.Resampling.BICUBIC)
        channels.append(np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64))
    return np.stack(channels, axis=-1)


def bicubic_down_up(
    img: np.ndarray, rng: np.random.Generator | None = None, *, scale: int = 4, mode: str = "torch"
) -> np.ndarray:
    """Low-resolution input at the original size: bicubic down to (H//scale, W//scale), then back up, rounded to
    8 bits once at the end (MiOIR rounds after the pair of resizes, not between them).

    Args:
        img: clean uint8 image (H, W, 3) with H, W >= ``scale``.
        rng: unused (the recipe is deterministic); accepted so every degradation has the same call form.
        scale: integer downscaling factor (4 in MiOIR).
        mode: ``"torch"`` = ``F.interpolate(mode="bicubic", align_corners=False)`` without antialiasing, as MiOIR;
            ``"pil"`` = Pillow bicubic, antialiased when shrinking (MATLAB-like).

    Returns:
        uint8 (H, W, 3).
    """
    img = check_image(img)
    if rng is not None:
        check_rng(rng)
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if mode not in SR_MODES:
        raise ValueError(f"mode must be one of {SR_MODES}, got {mode!r}")
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"image of size {h}x{w} is smaller than the scale factor {scale}")
    return to_uint8((_torch_down_up if mode == "torch" else _pil_down_up)(img, scale))
