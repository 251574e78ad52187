"""MiOIR rain streaks: sparse drops smeared along a line into streaks and added to every channel."""

from __future__ import annotations

import math

import numpy as np

from cplir.data.degradations._common import check_image, check_level, check_number, check_odd, check_rng
from cplir.data.degradations._filters import fft_convolve, full_convolve, gaussian_kernel, line_kernel

RAIN_DENSITY = {"id": (50, 99), "ood": (100, 150)}
RAIN_WIDTHS = (3, 5, 7, 9, 11)
RAIN_LENGTH = (20, 40)
RAIN_ANGLE = (-45, 44)

# Drops are first spread by a small cross (a bright centre with faint arms) before the streak blur.
_CROSS = np.array([[0.0, 0.1, 0.0], [0.1, 8.0, 0.1], [0.0, 0.1, 0.0]])


def _width_sigma(width: int) -> float:
    """σ of a Gaussian whose odd kernel size is ``width`` (OpenCV's rule for a kernel given only its size)."""
    return 0.3 * ((width - 1) / 2 - 1) + 0.8


def rain_streaks(
    shape: tuple[int, int], rng: np.random.Generator, density: float, width: int, length: float, angle: float
) -> np.ndarray:
    """Streak layer on [0, 255] truncated to 8 bits, shape (H, W).

    A pixel seeds a drop with probability ``density / 25600`` (the recipe thresholds U[0, 256) noise at
    ``256 - density/100``); drops pass through the cross filter and a line kernel at ``angle`` degrees from
    vertical widened by a Gaussian of odd size ``width``; the result is min-max normalised to [0, 255] and
    truncated (MiOIR's ``np.array(blurred, dtype=np.uint8)``). The line is ``length · (1 − length/100)`` pixels
    long: MiOIR's streak kernel is rotated with the scale ``1 − length/100`` (``cv2.getRotationMatrix2D``).
    """
    h, w = shape
    drops = (rng.random((h, w)) < density / 25600).astype(np.float64)
    line = full_convolve(_CROSS, line_kernel(length * (1 - length / 100), angle))
    streak = full_convolve(line, gaussian_kernel(width, _width_sigma(width)))
    layer = fft_convolve(drops, streak)
    low, high = layer.min(), layer.max()
    if high - low < 1e-12:  # no drop fell on the image
        return np.zeros((h, w), dtype=np.uint8)
    return ((layer - low) / (high - low) * 255).clip(0, 255).astype(np.uint8)


def draw_rain_params(rng: np.random.Generator, level: str = "id") -> dict:
    """The random parameters of :func:`add_rain`, drawn in its order: density, width, length, angle."""
    low, high = RAIN_DENSITY[check_level(level)]
    return {"density": int(rng.integers(low, high + 1)), "width": int(rng.choice(RAIN_WIDTHS)),
            "length": int(rng.integers(RAIN_LENGTH[0], RAIN_LENGTH[1] + 1)),
            "angle": int(rng.integers(RAIN_ANGLE[0], RAIN_ANGLE[1] + 1))}


def add_rain(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    level: str = "id",
    density: float | None = None,
    width: int | None = None,
    length: float | None = None,
    angle: float | None = None,
) -> np.ndarray:
    """Add rain streaks to all channels and clip.

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of the parameters (always drawn in the order density, width, length, angle) and the drops.
        level: ``"id"`` (density 50–99) or ``"ood"`` (density 100–150).
        density: streak density value instead of the draw (> 0; the expected share of seeded pixels is
            ``density / 25600``).
        width: odd streak width (Gaussian kernel size) instead of a draw from {3, 5, 7, 9, 11}.
        length: streak length value in [1, 99] instead of a draw from 20..40 (the line drawn is
            ``length · (1 − length/100)`` pixels long, as MiOIR's kernel).
        angle: degrees from vertical (positive: top leans left) instead of a draw from -45..44.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = draw_rain_params(rng, level)
    density = drawn["density"] if density is None else check_number("density", density, 0.0, low_open=True)
    width = drawn["width"] if width is None else check_odd("width", width)
    length = drawn["length"] if length is None else check_number("length", length, 1.0, 99.0)
    angle = drawn["angle"] if angle is None else check_number("angle", angle, -math.inf)
    streaks = rain_streaks(img.shape[:2], rng, density, width, length, angle)
    return np.clip(img.astype(np.int16) + streaks[..., None], 0, 255).astype(np.uint8)
