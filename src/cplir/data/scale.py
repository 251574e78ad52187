"""Scale as a first-class idea: where a low-resolution (LR) pixel sits in its high-resolution (HR) image.

A record of scale ``s`` pairs a clean HR image (H, W) with a degraded LR image (H // s, W // s): LR pixel
``(i, j)`` covers HR pixels ``[s·i, s·i + s) × [s·j, s·j + s)``. The SR benchmarks keep that relation by cutting
the HR image at the top left to a multiple of ``s`` before making the LR file (BasicSR's ``mod_crop``), so
windows are chosen on the LR grid and scaled by ``s`` for the HR image: the crops stay aligned, and a flip or
rotation applied to both keeps them aligned.
"""

from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from cplir.data.degradations.resize import CUBIC_SUPPORT
from cplir.metrics.protocols import center_crop_box

Window = Tuple[slice, slice]

# Extra LR pixels around a window whose LR is computed from its HR part: more than the bicubic kernel reaches
# (CUBIC_SUPPORT LR pixels each side), so the result equals the window of the whole image's LR.
DOWNSCALE_MARGIN = CUBIC_SUPPORT + 1


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """The top-left (H - H % scale, W - W % scale) part of an (H, W, ...) array."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


def size_mismatch(lq_shape: Tuple[int, ...], gt_shape: Tuple[int, ...], scale: int, clean: Path) -> Optional[str]:
    """Why a degraded image of ``lq_shape`` cannot pair with the clean image ``clean`` of ``gt_shape`` at
    ``scale``; None when it can (the same size at scale 1, ``gt // scale`` per side otherwise)."""
    (lh, lw), (gh, gw) = lq_shape[:2], gt_shape[:2]
    if (lh, lw) == (gh // scale, gw // scale):
        return None
    if scale == 1:
        return f"size {lw}x{lh} differs from its clean image {clean} ({gw}x{gh})"
    return (f"size {lw}x{lh} is not the size of its clean image {clean} ({gw}x{gh}) divided by the scale {scale} "
            f"(expected {gw // scale}x{gh // scale})")


def upscale_window(window: Window, scale: int) -> Window:
    """The HR window of an LR window."""
    rows, cols = window
    return slice(rows.start * scale, rows.stop * scale), slice(cols.start * scale, cols.stop * scale)


def centre_window(shape: Tuple[int, ...], multiple: int) -> Window:
    """The centred window of an (H, W, ...) shape whose sides are multiples of ``multiple`` (PromptIR's crop)."""
    top, left, height, width = center_crop_box(shape[0], shape[1], multiple)
    return slice(top, top + height), slice(left, left + width)


def downscaled_window(clean: np.ndarray, window: Window, scale: int,
                      downscale: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """LR pixels ``window`` of ``downscale(clean)``, computed from the HR window and a margin of
    :data:`DOWNSCALE_MARGIN` LR pixels (clipped at the image border, where the padding is the whole image's).

    ``clean`` is (H, W, 3) with H, W multiples of ``scale``; ``downscale`` maps (h, w, 3) to (h / scale, w / scale,
    3) with a kernel reaching at most ``CUBIC_SUPPORT`` LR pixels (the bicubic modes of
    :func:`~cplir.data.degradations.bicubic_downscale`). A training crop then costs a small resize, not a whole
    image's, and equals the crop of the whole image's LR.
    """
    rows, cols = window
    lr_h, lr_w = clean.shape[0] // scale, clean.shape[1] // scale
    top, left = max(0, rows.start - DOWNSCALE_MARGIN), max(0, cols.start - DOWNSCALE_MARGIN)
    bottom, right = min(lr_h, rows.stop + DOWNSCALE_MARGIN), min(lr_w, cols.stop + DOWNSCALE_MARGIN)
    low = downscale(clean[top * scale: bottom * scale, left * scale: right * scale])
    return low[rows.start - top: rows.stop - top, cols.start - left: cols.stop - left]
