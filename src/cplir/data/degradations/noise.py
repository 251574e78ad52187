"""Additive white Gaussian noise: the PromptIR benchmark recipe and MiOIR's seven-task recipe."""

from __future__ import annotations

import numpy as np

from cplir.data.degradations._common import check_image, check_number, check_rng, draw_uniform, to_uint8

PROMPTIR_SIGMAS = (15, 25, 50)
NOISE_SIGMA = {"id": (15.0, 50.0), "ood": (50.0, 70.0)}


def add_gaussian_noise_promptir(img: np.ndarray, sigma: float | None, rng: np.random.Generator) -> np.ndarray:
    """PromptIR's noisy input: ``clip(x + σ·N(0, 1), 0, 255)`` truncated (not rounded) to uint8.

    Args:
        img: clean uint8 image (H, W, 3).
        sigma: noise level on the [0, 255] scale (15, 25 and 50 in the benchmark; any value >= 0 works);
            ``None`` draws one of ``PROMPTIR_SIGMAS``.
        rng: source of the noise ``σ·rng.standard_normal((H, W, 3))``.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    sigma = float(rng.choice(PROMPTIR_SIGMAS)) if sigma is None else check_number("sigma", sigma, 0.0)
    noisy = np.clip(img + sigma * rng.standard_normal(img.shape), 0, 255)
    return noisy.astype(np.uint8)  # the published code casts, which truncates towards zero


def draw_noise_params(rng: np.random.Generator, level: str = "id") -> dict:
    """The random parameter of :func:`add_gaussian_noise`: σ = round(U[15, 50]) (ood: U[50, 70])."""
    return {"sigma": round(draw_uniform(rng, NOISE_SIGMA, level))}


def add_gaussian_noise(
    img: np.ndarray, rng: np.random.Generator, *, level: str = "id", sigma: float | None = None
) -> np.ndarray:
    """MiOIR noise: σ = round(U[15, 50]) (ood: U[50, 70]), then ``round(clip(x + σ·N(0, 1)))``.

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of σ (always drawn, so overriding it keeps the noise field) and of the noise.
        level: ``"id"`` or ``"ood"``.
        sigma: fixed noise level on the [0, 255] scale instead of the draw.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = draw_noise_params(rng, level)["sigma"]
    sigma = drawn if sigma is None else check_number("sigma", sigma, 0.0)
    return to_uint8(img + sigma * rng.standard_normal(img.shape))
