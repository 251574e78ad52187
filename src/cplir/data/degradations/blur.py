"""MiOIR isotropic Gaussian blur."""

from __future__ import annotations

import numpy as np

from cplir.data.degradations._common import check_image, check_odd, check_rng, draw_uniform, to_uint8
from cplir.data.degradations._filters import gaussian_kernel_1d, separable_filter

BLUR_KERNEL_SIZES = tuple(range(7, 22, 2))
BLUR_SIGMA = {"id": (1.0, 3.0), "ood": (3.0, 5.0)}


def draw_blur_params(rng: np.random.Generator, level: str = "id") -> dict:
    """The random parameters of :func:`add_gaussian_blur`, drawn in its order: odd kernel size, σ."""
    return {"kernel_size": int(rng.choice(BLUR_KERNEL_SIZES)), "sigma": draw_uniform(rng, BLUR_SIGMA, level)}


def add_gaussian_blur(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    level: str = "id",
    kernel_size: int | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """Isotropic Gaussian blur: odd kernel size from 7..21, σ ~ U[1, 3] (ood: U[3, 5]), reflect padding.

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of the kernel size and σ (both always drawn, in that order).
        level: ``"id"`` or ``"ood"``.
        kernel_size: fixed odd kernel size instead of the draw.
        sigma: fixed standard deviation in pixels instead of the draw.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = draw_blur_params(rng, level)
    size = drawn["kernel_size"] if kernel_size is None else check_odd("kernel_size", kernel_size)
    k = gaussian_kernel_1d(size, drawn["sigma"] if sigma is None else sigma)
    # The isotropic 2-D Gaussian is the outer product of two 1-D ones, so filter rows then columns.
    return to_uint8(separable_filter(img, k))
