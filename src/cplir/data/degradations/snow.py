"""Procedural snow ``I = J·(1 - M) + M`` with a mask of soft, slightly motion-blurred flakes."""

from __future__ import annotations

import math

import numpy as np

from cplir.data.degradations._common import check_image, check_number, check_rng, to_uint8
from cplir.data.degradations._filters import fft_convolve, full_convolve, gaussian_kernel, gaussian_size, line_kernel

SNOW_DENSITY = (0.002, 0.008)
# Flake size classes: Gaussian σ in pixels and share of the flakes (many small, few large).
SNOW_FLAKES = ((0.6, 0.6), (1.2, 0.3), (2.4, 0.1))
SNOW_BRIGHTNESS = (0.5, 1.0)
SNOW_MOTION_LENGTH = (3, 7)
SNOW_MOTION_ANGLE = (-30.0, 30.0)


def snow_mask(
    shape: tuple[int, int], rng: np.random.Generator, density: float, motion_length: float, motion_angle: float
) -> np.ndarray:
    """Flake mask M in [0, 1], shape (H, W).

    Each size class seeds flakes at ``density × share`` of the pixels with brightness U[0.5, 1]; a flake is a
    Gaussian blob smeared along a short line (falling motion) and scaled back to peak 1, so its centre keeps
    its brightness. Overlaps add up and saturate at 1.
    """
    h, w = shape
    motion = line_kernel(motion_length, motion_angle)
    mask = np.zeros((h, w))
    for sigma, share in SNOW_FLAKES:
        seeds = (rng.random((h, w)) < density * share) * rng.uniform(*SNOW_BRIGHTNESS, size=(h, w))
        flake = full_convolve(gaussian_kernel(gaussian_size(sigma), sigma), motion)
        mask += fft_convolve(seeds, flake / flake.max())
    return np.clip(mask, 0.0, 1.0)


def add_snow(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    density: float | None = None,
    motion_length: float | None = None,
    motion_angle: float | None = None,
) -> np.ndarray:
    """Blend white flakes into the image: ``255·(J/255·(1 - M) + M)``.

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of the parameters (always drawn in the order density, motion length, motion angle) and flakes.
        density: share of pixels that seed a flake, in (0, 1], instead of a draw from U[0.002, 0.008].
        motion_length: length in pixels of the motion blur instead of a draw from 3..7.
        motion_angle: degrees from vertical of the fall direction instead of a draw from U[-30, 30].

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = (
        float(rng.uniform(*SNOW_DENSITY)),
        int(rng.integers(SNOW_MOTION_LENGTH[0], SNOW_MOTION_LENGTH[1] + 1)),
        float(rng.uniform(*SNOW_MOTION_ANGLE)),
    )
    density = drawn[0] if density is None else check_number("density", density, 0.0, 1.0, low_open=True)
    motion_length = drawn[1] if motion_length is None else check_number("motion_length", motion_length, 1.0)
    motion_angle = drawn[2] if motion_angle is None else check_number("motion_angle", motion_angle, -math.inf)
    mask = snow_mask(img.shape[:2], rng, density, motion_length, motion_angle)[..., None]
    return to_uint8(img * (1 - mask) + 255 * mask)
