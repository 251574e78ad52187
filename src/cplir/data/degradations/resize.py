"""MiOIR super-resolution input: bicubic down ×1/scale, then bicubic up to the original size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cplir.data.degradations._common import check_image, check_rng, to_uint8

SR_MODES = ("torch", "pil")


def _torch_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W, 3) to ``size`` = (h, w) with torch bicubic, no antialiasing (MiOIR)."""
    t = torch.from_numpy(img).permute(2, 0, 1)[None].to(torch.float64)
    t = F.interpolate(t, size=size, mode="bicubic", align_corners=False)
    return to_uint8(t[0].permute(1, 2, 0).numpy())


def _pil_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W, 3) to ``size`` = (h, w) with Pillow's antialiased bicubic (close to MATLAB imresize)."""
    return np.array(Image.fromarray(img).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def bicubic_down_up(
    img: np.ndarray, rng: np.random.Generator | None = None, *, scale: int = 4, mode: str = "torch"
) -> np.ndarray:
    """Low-resolution input at the original size: bicubic down to (H//scale, W//scale), rounded, then back up.

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
    resize = _torch_bicubic if mode == "torch" else _pil_bicubic
    return resize(resize(img, (h // scale, w // scale)), (h, w))
