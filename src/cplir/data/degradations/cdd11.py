"""CDD-11 style single and composite degradations (low light, haze, rain, snow)."""

from __future__ import annotations

import functools

import numpy as np

from cplir.data.degradations._common import check_image, check_rng
from cplir.data.degradations.haze import add_haze, pseudo_depth
from cplir.data.degradations.lowlight import low_light_retinex
from cplir.data.degradations.rain import add_rain
from cplir.data.degradations.snow import add_snow
from cplir.seeding import numpy_generator

CDD11_CLASSES = (
    "low", "haze", "rain", "snow",
    "low_haze", "low_rain", "low_snow", "haze_rain", "haze_snow",
    "low_haze_rain", "low_haze_snow",
)  # fmt: skip
# Application order of the components; each draws from its own child generator (index = position here).
CDD11_ORDER = ("low", "rain", "snow", "haze")
CDD_HAZE_BETA = (1.0, 2.0)
CDD_HAZE_AIRLIGHT = (0.6, 0.9)


def _cdd_haze(img: np.ndarray, rng: np.random.Generator, *, depth: np.ndarray | None) -> np.ndarray:
    """:func:`add_haze` with CDD-11's β ~ U[1, 2] and A ~ U[0.6, 0.9]."""
    beta, airlight = rng.uniform(*CDD_HAZE_BETA), rng.uniform(*CDD_HAZE_AIRLIGHT)
    return add_haze(img, rng, beta=beta, airlight=airlight, depth=depth)


def cdd11_composite(
    img: np.ndarray, cls: str, rng: np.random.Generator, depth: np.ndarray | None = None
) -> np.ndarray:
    """Synthesise a CDD-11 class by applying its components in the order low light → rain → snow → haze.

    ``rng`` first yields four seeds, one per component of ``CDD11_ORDER``, whether or not the class uses it; each
    component draws only from the generator built from its seed. So a composite equals its components applied
    one after another with the same ``rng`` seed, e.g. ``low_haze(x) == haze(low(x))``. Every step is rounded to
    8 bits. Components: :func:`low_light_retinex`; :func:`add_rain` (in-distribution parameters);
    :func:`add_snow`; :func:`add_haze` with β ~ U[1, 2], A ~ U[0.6, 0.9].

    Args:
        img: clean uint8 image (H, W, 3).
        cls: one of ``CDD11_CLASSES``.
        rng: random generator of this sample.
        depth: (H, W) depth map for the haze (larger = farther); ``None`` uses :func:`pseudo_depth` of the clean
            ``img``, as depth belongs to the scene, not to the degraded image.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    if cls not in CDD11_CLASSES:
        raise ValueError(f"unknown CDD-11 class {cls!r}; choose one of {CDD11_CLASSES}")
    seeds = rng.integers(0, 2**63 - 1, size=len(CDD11_ORDER))
    parts = cls.split("_")
    if depth is None and "haze" in parts:
        depth = pseudo_depth(img)
    steps = {
        "low": low_light_retinex,
        "rain": add_rain,
        "snow": add_snow,
        "haze": functools.partial(_cdd_haze, depth=depth),
    }
    out = img
    for component, seed in zip(CDD11_ORDER, seeds):
        if component in parts:
            out = steps[component](out, numpy_generator(int(seed)))
    return out
