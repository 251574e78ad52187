"""Atmospheric-scattering haze ``I = J·t + 255·A·(1 - t)``, ``t = exp(-β·d)``, with a real or pseudo depth map."""

from __future__ import annotations

import numpy as np

from cplir.data.degradations._common import check_image, check_number, check_rng, draw_uniform, to_uint8
from cplir.data.degradations._filters import gaussian_kernel_1d, gaussian_size, separable_filter

HAZE_BETA = {"id": (0.5, 2.5), "ood": (2.5, 3.0)}
HAZE_AIRLIGHT = {"id": (0.8, 1.0), "ood": (0.8, 1.0)}


def _min_filter(x: np.ndarray, size: int) -> np.ndarray:
    """Minimum over ``size``×``size`` windows of (H, W), edge padding; a box minimum is separable."""
    pad = size // 2
    for axis in (0, 1):
        widths = [(0, 0), (0, 0)]
        widths[axis] = (pad, pad)
        x = np.lib.stride_tricks.sliding_window_view(np.pad(x, widths, mode="edge"), size, axis=axis).min(axis=-1)
    return x


def normalise_depth(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Depth map (larger = farther) of shape ``shape`` = (H, W) as d in [0, 1].

    A map whose values already lie in [0, 1] is taken as d unchanged, so a crop of a scene's normalised depth keeps
    the scene's scale (training crops must not each span the full haze range); any other map is divided by its
    maximum, as MiOIR's ``add_haze`` does with its depth maps (:func:`scale_depth`).
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.shape != tuple(shape):
        raise ValueError(f"depth must have the image's shape {tuple(shape)}, got {depth.shape}")
    if not np.isfinite(depth).all():
        raise ValueError("depth holds NaN or infinite values")
    if depth.min() >= 0.0 and depth.max() <= 1.0:
        return depth
    return scale_depth(depth)


def scale_depth(depth: np.ndarray) -> np.ndarray:
    """A scene's depth map (H, W), non-negative, divided by its maximum (MiOIR: ``depth_arr / depth_arr.max()``),
    so the farthest point has d = 1 and the nearest keeps its distance ratio."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.min() < 0 or depth.max() <= 0:
        raise ValueError(f"a depth map must be non-negative with a positive maximum, got values in "
                         f"[{depth.min()}, {depth.max()}]")
    return depth / depth.max()


def stretch_depth(depth: np.ndarray) -> np.ndarray:
    """Min-max normalise (H, W) to [0, 1]; a constant map becomes all ones (every point equally far)."""
    low, high = depth.min(), depth.max()
    return np.ones(depth.shape) if high - low < 1e-12 else (depth - low) / (high - low)


def pseudo_depth(img: np.ndarray, *, patch: int = 15) -> np.ndarray:
    """Depth stand-in for images without a depth map, (H, W) in [0, 1], larger = farther.

    The mean of two cues, Gaussian-smoothed with σ = ``patch``/2 and min-max normalised:
    a vertical gradient (outdoor scenes recede towards the top of the frame) and the dark channel (per-pixel
    channel minimum, then a ``patch``×``patch`` minimum filter), which is high on sky and other bright,
    colourless regions that are usually far away.
    """
    img = check_image(img)
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 1:
        raise ValueError(f"patch must be a positive integer, got {patch!r}")
    h, w = img.shape[:2]
    dark = _min_filter(img.min(axis=2).astype(np.float64) / 255, patch)
    vertical = np.broadcast_to(np.linspace(1.0, 0.0, h)[:, None], (h, w))
    sigma = patch / 2
    return stretch_depth(separable_filter(0.5 * vertical + 0.5 * dark, gaussian_kernel_1d(gaussian_size(sigma), sigma)))


def draw_haze_params(rng: np.random.Generator, level: str = "id") -> dict:
    """The random parameters of :func:`add_haze`, drawn in its order: β, then the atmospheric light A."""
    return {"beta": draw_uniform(rng, HAZE_BETA, level), "airlight": draw_uniform(rng, HAZE_AIRLIGHT, level)}


def add_haze(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    level: str = "id",
    beta: float | None = None,
    airlight: float | None = None,
    depth: np.ndarray | None = None,
    homogeneous: bool = False,
) -> np.ndarray:
    """Haze by the atmospheric scattering model, β ~ U[0.5, 2.5] (ood: U[2.5, 3]), A ~ U[0.8, 1].

    Args:
        img: clean uint8 image (H, W, 3).
        rng: source of β and A (always drawn, in that order).
        level: ``"id"`` or ``"ood"``.
        beta: scattering coefficient >= 0 instead of the draw.
        airlight: atmospheric light A in [0, 1] (times 255) instead of the draw.
        depth: (H, W) depth map, larger = farther: values in [0, 1] are used as d, any other map is divided by
            its maximum (:func:`normalise_depth`).
            ``None`` uses :func:`pseudo_depth` of ``img``.
        homogeneous: use d = 1 everywhere (uniform transmission ``exp(-β)``) instead of any depth.

    Returns:
        uint8 (H, W, 3).
    """
    img, rng = check_image(img), check_rng(rng)
    drawn = draw_haze_params(rng, level)
    beta = drawn["beta"] if beta is None else check_number("beta", beta, 0.0)
    airlight = drawn["airlight"] if airlight is None else check_number("airlight", airlight, 0.0, 1.0)
    shape = img.shape[:2]
    if homogeneous:
        if depth is not None:
            raise ValueError("pass either depth or homogeneous=True, not both")
        d = np.ones(shape)
    else:
        d = pseudo_depth(img) if depth is None else normalise_depth(depth, shape)
    t = np.exp(-beta * d)[..., None]
    return to_uint8(img * t + 255 * airlight * (1 - t))
