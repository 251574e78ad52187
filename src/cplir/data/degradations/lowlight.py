"""Low light: MiOIR's gamma darkening and the CDD-11 Retinex-style darkening with sensor noise."""

from __future__ import annotations

import numpy as np

from cplir.data.degradations._common import check_image, check_number, check_rng, draw_uniform, to_uint8
from cplir.data.degradations._filters import gaussian_kernel_1d, gaussian_size, separable_filter

LOWLIGHT_GAMMA = {"id": (1.0, 3.0), "ood": (3.0, 4.0)}
CDD_LOWLIGHT_EXPONENT = (2.0, 3.0)
CDD_LOWLIGHT_NOISE = (0.03, 0.08)


def draw_gamma_params(rng: np.random.Generator, level: str = "id") -> dict:
    """The random parameter of :func:`low_light_gamma`: γ ~ U[1, 3] (ood: U[3, 4])."""
    return {"gamma": draw_uniform(rng, LOWLIGHT_GAMMA, level)}


def low_light_gamma(
    img: np.ndarray, rng: np.random.Generator, *, level: str = "id", gamma: float | None = None
) -> np.ndarray:
    """MiOIR low light ``255·(J/255)^γ`` with γ ~ U[1, 3] (ood: U[3, 4]).

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of γ (always drawn).
        level: ``"id"`` or ``"ood"``.
        gamma: fixed exponent > 0 instead of the draw (> 1 darkens).

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = draw_gamma_params(rng, level)["gamma"]
    gamma = drawn if gamma is None else check_number("gamma", gamma, 0.0, low_open=True)
    return to_uint8(255 * (img / 255) ** gamma)


def illumination_map(img: np.ndarray) -> np.ndarray:
    """Smooth illumination L in [0, 1], (H, W): the max channel on [0, 1] Gaussian-blurred with σ = 2 % of max(H, W).

    The max channel bounds every channel from above, so ``R = J / L`` is a plausible reflectance.
    """
    sigma = max(1.0, 0.02 * max(img.shape[:2]))
    return separable_filter(img.max(axis=2) / 255, gaussian_kernel_1d(gaussian_size(sigma), sigma))


def low_light_retinex(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    exponent: float | None = None,
    noise_sigma: float | None = None,
) -> np.ndarray:
    """CDD-11 low light: ``I = R·L^g + σ·N(0, 1)`` on [0, 1] with ``R = J/L``, g ~ U[2, 3], σ ~ U[0.03, 0.08].

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of g, σ (always drawn, in that order) and the noise.
        exponent: illumination exponent g > 0 instead of the draw (> 1 darkens, most where L is small).
        noise_sigma: noise standard deviation on [0, 1] instead of the draw.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn_exponent = float(rng.uniform(*CDD_LOWLIGHT_EXPONENT))
    drawn_sigma = float(rng.uniform(*CDD_LOWLIGHT_NOISE))
    exponent = drawn_exponent if exponent is None else check_number("exponent", exponent, 0.0, low_open=True)
    noise_sigma = drawn_sigma if noise_sigma is None else check_number("noise_sigma", noise_sigma, 0.0)
    light = np.clip(illumination_map(img), 1e-6, 1.0)[..., None]
    reflectance = img / 255 / light
    dark = reflectance * light**exponent + noise_sigma * rng.standard_normal(img.shape)
    return to_uint8(255 * np.clip(dark, 0.0, 1.0))
