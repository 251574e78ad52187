"""Degradations by name, for data loaders."""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np

from cplir.data.degradations.blur import add_gaussian_blur, draw_blur_params
from cplir.data.degradations.cdd11 import CDD11_CLASSES, cdd11_composite
from cplir.data.degradations.haze import add_haze, draw_haze_params
from cplir.data.degradations.jpeg import draw_jpeg_params, jpeg_compress
from cplir.data.degradations.lowlight import draw_gamma_params, low_light_gamma
from cplir.data.degradations.noise import add_gaussian_noise, add_gaussian_noise_promptir, draw_noise_params
from cplir.data.degradations.rain import add_rain, draw_rain_params
from cplir.data.degradations.resize import bicubic_down_up, bicubic_downscale
from cplir.data.degradations.snow import add_snow

MIOIR_TASKS = ("sr", "blur", "noise", "jpeg", "rain", "haze", "lowlight")


def _cdd11_entry(cls: str) -> Callable[..., np.ndarray]:
    """``cdd11_composite`` bound to one class, with the registry's ``(img, rng, **overrides)`` call form."""

    def synthesise(img: np.ndarray, rng: np.random.Generator, depth: np.ndarray | None = None) -> np.ndarray:
        return cdd11_composite(img, cls, rng, depth)

    synthesise.__name__ = synthesise.__qualname__ = f"cdd11_{cls}"
    synthesise.__doc__ = f"CDD-11 class {cls!r}: ``cdd11_composite(img, {cls!r}, rng, depth)``."
    return synthesise


# CDD-11 classes carry a "cdd11_" prefix: "rain" and "haze" already name MiOIR's recipes.
DEGRADATIONS: dict[str, Callable[..., np.ndarray]] = {
    "noise_promptir": functools.partial(add_gaussian_noise_promptir, sigma=None),  # σ drawn from {15, 25, 50}
    "sr": bicubic_down_up,
    "blur": add_gaussian_blur,
    "noise": add_gaussian_noise,
    "jpeg": jpeg_compress,
    "rain": add_rain,
    "haze": add_haze,
    "lowlight": low_light_gamma,
    "snow": add_snow,
    "downscale": bicubic_downscale,  # super-resolution input: the one entry whose output is smaller
    **{f"cdd11_{cls}": _cdd11_entry(cls) for cls in CDD11_CLASSES},
}


# The random parameters each MiOIR degradation draws first from its generator, ``draw(rng, level) -> dict``: on a
# copy of a sample's generator they tell the values the degradation will use (the offline set's manifest).
PARAMETER_DRAWS: dict[str, Callable[..., dict]] = {
    "sr": lambda rng, level="id": {},
    "blur": draw_blur_params,
    "noise": draw_noise_params,
    "jpeg": draw_jpeg_params,
    "rain": draw_rain_params,
    "haze": draw_haze_params,
    "lowlight": draw_gamma_params,
}


# Parameter names of every degradation, read once (loaders ask per sample whether one takes `depth` or `level`).
DEGRADATION_PARAMS: dict[str, frozenset] = {name: frozenset(inspect.signature(fn).parameters)
                                            for name, fn in DEGRADATIONS.items()}
_DOWNSCALE_DEFAULT = inspect.signature(bicubic_downscale).parameters["scale"].default


def size_ratio(name: str, params: dict) -> int:
    """How many times smaller than the clean image (per side) degradation ``name`` with ``params`` makes it."""
    return int(params.get("scale", _DOWNSCALE_DEFAULT)) if name == "downscale" else 1


def degrade(img: np.ndarray, name: str, rng: np.random.Generator, level: str = "id", **overrides) -> np.ndarray:
    """Apply the degradation registered as ``name``.

    Args:
        img: clean uint8 image (H, W, 3).
        name: a key of ``DEGRADATIONS``.
        rng: random generator of this sample, e.g. ``cplir.seeding.numpy_generator(seed, relative_path, name)``.
        level: ``"id"`` or ``"ood"``; only degradations with a ``level`` parameter have an ``"ood"`` level.
        **overrides: fixed parameter values instead of random draws (e.g. ``sigma=25``); ``noise_promptir``
            draws σ from {15, 25, 50} unless ``sigma`` is given.

    Returns:
        uint8 (H, W, 3); (H / scale, W / scale, 3) for ``downscale`` (:func:`size_ratio`).
    """
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; choose one of {sorted(DEGRADATIONS)}")
    fn = DEGRADATIONS[name]
    params = DEGRADATION_PARAMS[name]
    accepted = sorted(p for p in params if p not in ("img", "rng", "level"))
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(f"degradation {name!r} has no parameter(s) {unknown}; it accepts {accepted}")
    if "level" in params:
        overrides["level"] = level
    elif level != "id":
        raise ValueError(f"degradation {name!r} has only the in-distribution level 'id', got level={level!r}")
    return fn(img, rng=rng, **overrides)

