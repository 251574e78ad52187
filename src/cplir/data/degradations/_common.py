"""Shared checks and parameter draws for the degradation functions.

Every degradation takes a clean uint8 RGB image of shape (H, W, 3) and a ``np.random.Generator`` and returns a
uint8 image of the same shape; the helpers here enforce that contract and draw the random parameters.
"""

from __future__ import annotations

import math

import numpy as np

LEVELS = ("id", "ood")


def check_image(img: np.ndarray) -> np.ndarray:
    """Return ``img`` if it is a uint8 RGB array of shape (H, W, 3); raise ``ValueError`` otherwise."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        got = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(
            f"degradations take a uint8 RGB image of shape (H, W, 3), got a {got}; "
            "convert floats with np.clip(np.rint(x), 0, 255).astype(np.uint8)"
        )
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"image is empty: shape {img.shape}")
    return img


def check_rng(rng: np.random.Generator) -> np.random.Generator:
    """Return ``rng`` if it is a ``np.random.Generator``; raise ``ValueError`` otherwise."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}; "
            "build one with np.random.default_rng(seed) or cplir.seeding.numpy_generator(seed, key)"
        )
    return rng


def check_level(level: str) -> str:
    """Return ``level`` if it is ``"id"`` (in-distribution) or ``"ood"`` (harder, out-of-distribution)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return level


def check_number(name: str, value: float, low: float, high: float = math.inf, *, low_open: bool = False) -> float:
    """Return ``value`` as a float if it lies in [low, high] (or (low, high] when ``low_open``)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value}")
    return value


def check_odd(name: str, value: int) -> int:
    """Return ``value`` if it is a positive odd integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {value!r}")
    return int(value)


def draw_uniform(rng: np.random.Generator, ranges: dict, level: str) -> float:
    """Draw U[low, high] with the bounds of ``ranges[level]``."""
    low, high = ranges[check_level(level)]
    return float(rng.uniform(low, high))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round a float image on the [0, 255] scale to 8 bits (each recipe step is quantised like a saved image)."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
