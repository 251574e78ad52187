"""Bicubic resizing: MiOIR's super-resolution input (down then up) and the low-resolution input of SR benchmarks.

Three bicubic flavours, because published numbers depend on which one made the inputs:

* ``"matlab"``: MATLAB's ``imresize(img, size, 'bicubic')`` (the recipe of DIV2K's ``LR_bicubic`` files and of
  the classic SR test sets): cubic kernel with a = -0.5, widened by 1/scale when shrinking (antialiasing),
  symmetric (edge-repeating) padding, weights normalised per output pixel, rows then columns in float64, rounded
  to 8 bits at the end.
* ``"torch"``: ``F.interpolate(mode="bicubic", align_corners=False)`` without antialiasing (a = -0.75; MiOIR).
* ``"pil"``: Pillow's bicubic (a = -0.5, antialiased when shrinking, but borders renormalised instead of padded
  and 8-bit between the two passes: close to MATLAB, not equal).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cplir.data.degradations._common import check_image, check_rng, to_uint8

SR_MODES = ("torch", "pil", "matlab")
CUBIC_A = -0.5  # MATLAB's (and Keys') bicubic coefficient
CUBIC_SUPPORT = 2  # the cubic kernel is zero beyond 2 input pixels (2·scale when shrinking by 1/scale)


def _check_scale(scale: int) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5."""
    a, x = CUBIC_A, np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _matlab_weights(in_len: int, out_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights, indices), both (out_len, taps), of MATLAB's bicubic ``imresize`` along one axis.

    Output pixel ``i`` (1-based) sits at input coordinate ``u = i / scale + 0.5 · (1 - 1 / scale)``; when
    shrinking, the kernel is stretched by ``1 / scale`` (antialiasing). Out-of-range indices are mirrored with the
    edge pixel repeated (MATLAB's symmetric padding).
    """
    scale = out_len / in_len
    width = 2 * CUBIC_SUPPORT / scale if scale < 1 else 2 * CUBIC_SUPPORT
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    indices = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]  # 1-based, one spare tap each side
    distance = u[:, None] - indices
    weights = scale * _cubic(distance * scale) if scale < 1 else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    zero_based = (indices - 1).astype(np.int64) % (2 * in_len)
    mirrored = np.where(zero_based < in_len, zero_based, 2 * in_len - 1 - zero_based)
    return weights, mirrored


def imresize_matlab(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(img, [h, w], 'bicubic')`` of an (H, W, C) array, float64 (H', W', C), not rounded.

    The scale of each axis is ``size / input size``, as MATLAB computes it for an explicit output size.
    """
    out = np.asarray(img, dtype=np.float64)
    for axis, length in enumerate(size):
        weights, indices = _matlab_weights(out.shape[axis], int(length))
        rows = np.moveaxis(out, axis, 0)
        column = (-1,) + (1,) * (rows.ndim - 1)
        acc = np.zeros((int(length),) + rows.shape[1:])
        for tap in range(weights.shape[1]):  # one tap at a time: no (out, taps, ...) array in memory
            acc += weights[:, tap].reshape(column) * rows[indices[:, tap]]
        out = np.moveaxis(acc, 0, axis)
    return out


def _torch_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3) to ``size`` = (h, w) with torch bicubic, no antialiasing (MiOIR); float64, not rounded."""
    t = torch.from_numpy(np.asarray(img, dtype=np.float64)).permute(2, 0, 1)[None]
    return F.interpolate(t, size=size, mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()


def _pil_bicubic(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (H, W, 3) to ``size`` = (h, w) with Pillow's antialiased bicubic, channel by channel on 32-bit float
    images (nothing rounded); float64."""
    planes = [Image.fromarray(np.asarray(img[..., c], dtype=np.float32), mode="F").resize(
        (size[1], size[0]), Image.Resampling.BICUBIC) for c in range(img.shape[2])]
    return np.stack([np.asarray(p, dtype=np.float64) for p in planes], axis=-1)


def _torch_down_up(img: np.ndarray, scale: int) -> np.ndarray:
    """MiOIR's ``resize_tensor``: ``F.interpolate(scale_factor=1/scale, mode="bicubic")`` (no antialiasing; the
    sampling grid follows the factor, not the rounded size), then bicubic up to (H, W), in floating point."""
    h, w = img.shape[:2]
    t = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None]
    small = F.interpolate(t, scale_factor=1 / scale, mode="bicubic", align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()


def _pil_down_up(img: np.ndarray, scale: int) -> np.ndarray:
    """Pillow's bicubic (antialiased when shrinking, close to MATLAB imresize) down to (H//scale, W//scale) and
    back, on float images so the small image is not rounded either."""
    h, w = img.shape[:2]
    return _pil_bicubic(_pil_bicubic(img, (h // scale, w // scale)), (h, w))


def _matlab_down_up(img: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB's bicubic down to (H//scale, W//scale) and back, not rounded in between."""
    h, w = img.shape[:2]
    return imresize_matlab(imresize_matlab(img, (h // scale, w // scale)), (h, w))


_DOWN_UP = {"torch": _torch_down_up, "pil": _pil_down_up, "matlab": _matlab_down_up}
_RESIZERS = {"torch": _torch_bicubic, "pil": _pil_bicubic, "matlab": imresize_matlab}


def _resizer(mode: str):
    if mode not in SR_MODES:
        raise ValueError(f"mode must be one of {SR_MODES}, got {mode!r}")
    return _RESIZERS[mode]


def bicubic_down_up(
    img: np.ndarray, rng: np.random.Generator | None = None, *, scale: int = 4, mode: str = "torch"
) -> np.ndarray:
    """Low-resolution input at the original size: bicubic down to (H//scale, W//scale), then back up, rounded to
    8 bits once at the end (MiOIR rounds after the pair of resizes, not between them).

    Args:
        img: clean uint8 image (H, W, 3) with H, W >= ``scale``.
        rng: unused (the recipe is deterministic); accepted so every degradation has the same call form.
        scale: integer downscaling factor (4 in MiOIR).
        mode: ``"torch"`` = ``F.interpolate(mode="bicubic", align_corners=False)`` without antialiasing, as MiOIR;
            ``"pil"`` = Pillow bicubic, antialiased when shrinking (MATLAB-like); ``"matlab"`` = MATLAB's
            ``imresize`` (module docstring).

    Returns:
        uint8 (H, W, 3).
    """
    img = check_image(img)
    if rng is not None:
        check_rng(rng)
    scale = _check_scale(scale)
    _resizer(mode)  # an unknown mode is refused here
    h, w = img.shape[:2]
    if h < scale or w < scale:
        raise ValueError(f"image of size {h}x{w} is smaller than the scale factor {scale}")
    return to_uint8(_DOWN_UP[mode](img, scale))


def bicubic_downscale(
    img: np.ndarray, rng: np.random.Generator | None = None, *, scale: int = 4, mode: str = "matlab"
) -> np.ndarray:
    """The low-resolution input of super-resolution: bicubic down by ``scale``, rounded to 8 bits.

    The only degradation whose output is smaller than its input: (H, W, 3) -> (H / scale, W / scale, 3). H and W
    must be multiples of ``scale`` (crop the clean image first, as the SR benchmarks do), so every low-resolution
    pixel covers exactly ``scale × scale`` clean pixels and crops stay aligned.

    Args:
        img: clean uint8 image (H, W, 3).
        rng: unused (deterministic); accepted for the common call form.
        scale: integer factor (2, 3, 4 in the SR tables).
        mode: one of :data:`SR_MODES`; ``"matlab"`` (default) is how DIV2K's and the test sets' LR files are made.

    Returns:
        uint8 (H / scale, W / scale, 3).
    """
    img = check_image(img)
    if rng is not None:
        check_rng(rng)
    scale, resize = _check_scale(scale), _resizer(mode)
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"image of size {h}x{w} is not a multiple of the scale factor {scale}; crop it first")
    return to_uint8(resize(img, (h // scale, w // scale)))
