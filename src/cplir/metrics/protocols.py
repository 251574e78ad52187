"""PSNR and SSIM under the evaluation protocols of the field (docs/design.md §6), in numpy.

Numbers are only comparable under one protocol, so every function names the protocol it implements:

* ``promptir`` — PromptIR / AdaIR / CDD-11 tables. Both images are centre-cropped to a multiple of 16 (as
  PromptIR's ``crop_img(image, base=16)`` does), taken as float RGB in [0, 1] and clipped; PSNR with data range 1
  (scikit-image ``peak_signal_noise_ratio``); SSIM with scikit-image's ``structural_similarity`` defaults
  (7×7 uniform window, sample covariance, K1=0.01, K2=0.03, data range 1, mean over the interior that lies 3
  pixels inside the border, averaged over channels). No border crop.
* ``basicsr_rgb`` / ``basicsr_y`` — CPLIR WeatherBench / all-weather / MiOIR tables (BasicSR's
  ``calculate_psnr`` / ``calculate_ssim``). uint8 images as float64 on the 0..255 scale, ``crop_border`` pixels
  removed from every side; PSNR = 10·log10(255²/MSE); SSIM per channel with an 11×11 Gaussian window (σ=1.5),
  population statistics, C1=(0.01·255)², C2=(0.03·255)², valid region only, averaged over channels. The Y
  variant first converts to BT.601 luma on the [16, 235] scale, not rounded.

scikit-image is not a dependency: the filtering is written here with shifted sums, which on the valid region is
exactly the windowed mean the references compute (their border handling only touches pixels both discard).
"""

import math

import numpy as np

from cplir.errors import MetricInputError

PROTOCOLS = ("promptir", "basicsr_rgb", "basicsr_y")

PROMPTIR_CROP_BASE = 16

# BT.601 luma weights for R, G, B in [0, 1], giving Y on the [16, 235] scale after adding 16 (BasicSR's bgr2ycbcr).
BT601_Y_WEIGHTS = (65.481, 128.553, 24.966)


def check_protocol(protocol: str) -> None:
    """Reject a protocol name that is not in :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise MetricInputError(f"unknown metric protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def _check_pair(restored: np.ndarray, target: np.ndarray, dtypes: str) -> None:
    """Reject pairs the protocols are not defined for; ``dtypes`` is "uint8" or "uint8 or float"."""
    for name, image in (("restored", restored), ("target", target)):
        if not isinstance(image, np.ndarray):
            raise MetricInputError(f"{name} must be a numpy array (H, W, 3), got {type(image).__name__}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise MetricInputError(f"{name} must be an RGB image of shape (H, W, 3), got shape {image.shape}")
        allowed = image.dtype == np.uint8 or (dtypes != "uint8" and np.issubdtype(image.dtype, np.floating))
        if not allowed:
            raise MetricInputError(f"{name} must have dtype {dtypes}, got {image.dtype}; convert it first")
    if restored.shape != target.shape:
        raise MetricInputError(
            f"restored and target differ in shape: {restored.shape} vs {target.shape}; "
            "metrics need the restored image at the size of its ground truth"
        )


def center_crop_box(height: int, width: int, base: int = PROMPTIR_CROP_BASE) -> tuple:
    """(top, left, crop_height, crop_width) of PromptIR's ``crop_img``: the centred multiple-of-``base`` crop.

    The crop starts at ``(H % base) // 2`` (integer division, so an odd remainder leaves the extra row at the
    bottom and the extra column at the right).
    """
    rem_h, rem_w = height % base, width % base
    return rem_h // 2, rem_w // 2, height - rem_h, width - rem_w


def center_crop_to_multiple(image: np.ndarray, base: int = PROMPTIR_CROP_BASE) -> np.ndarray:
    """Crop (H, W, ...) to (H - H % base, W - W % base, ...) as PromptIR's test script does."""
    top, left, height, width = center_crop_box(image.shape[0], image.shape[1], base)
    return image[top : top + height, left : left + width]


def _valid_filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable correlation of (H, W, C) with the outer product of 1-D ``kernel`` (length k), valid region only.

    Returns (H - k + 1, W - k + 1, C); a sum of k shifted slices per axis, so no border mode is involved.
    """
    k = len(kernel)
    for axis in (0, 1):
        x = np.moveaxis(x, axis, 0)
        n = x.shape[0] - k + 1
        x = np.moveaxis(sum(weight * x[i : i + n] for i, weight in enumerate(kernel)), 0, axis)
    return x


def _ssim_map(x: np.ndarray, y: np.ndarray, kernel: np.ndarray, c1: float, c2: float, cov_norm: float) -> np.ndarray:
    """SSIM index per valid window position: (H, W, C) float64 pair -> (H - k + 1, W - k + 1, C)."""
    mu_x = _valid_filter(x, kernel)
    mu_y = _valid_filter(y, kernel)
    var_x = cov_norm * (_valid_filter(x * x, kernel) - mu_x * mu_x)
    var_y = cov_norm * (_valid_filter(y * y, kernel) - mu_y * mu_y)
    cov_xy = cov_norm * (_valid_filter(x * y, kernel) - mu_x * mu_y)
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim_settings(protocol: str) -> tuple:
    """(1-D window (k,), C1, C2, covariance normaliser) of the SSIM of a protocol; the 2-D window is the outer
    product of the 1-D one."""
    if protocol == "promptir":
        # scikit-image defaults: 7×7 uniform window, sample covariance N / (N - 1), data range 1.
        n = 7 * 7
        return np.full(7, 1.0 / 7), 0.01**2, 0.03**2, n / (n - 1)
    return gaussian_kernel_1d(11, 1.5), (0.01 * 255) ** 2, (0.03 * 255) ** 2, 1.0


def check_window(shape: tuple, window: int, protocol: str) -> None:
    """Reject an (H, W, ...) image smaller than the SSIM window."""
    if shape[0] < window or shape[1] < window:
        raise MetricInputError(
            f"{protocol} SSIM needs images of at least {window}×{window} pixels after cropping, got "
            f"{shape[0]}×{shape[1]}; use larger images or a smaller crop_border"
        )


def gaussian_kernel_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian (size,), centred; its outer product is BasicSR's SSIM window."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def min_image_side(protocol: str, crop_border: int = 0) -> int:
    """The smallest image side a protocol can score: the promptir crop to a multiple of 16 must leave something
    (and 16 covers its 7x7 SSIM window); the basicsr protocols need the 11x11 window after the border crop."""
    check_protocol(protocol)
    if protocol == "promptir":
        return PROMPTIR_CROP_BASE
    return 2 * crop_border + len(gaussian_kernel_1d())


def check_promptir_size(height: int, width: int) -> None:
    """Reject images that the crop to a multiple of 16 would empty."""
    if min(height, width) < PROMPTIR_CROP_BASE:
        raise MetricInputError(
            f"the promptir protocol crops to a multiple of {PROMPTIR_CROP_BASE}; a {height}×{width} image is too "
            "small, use another protocol"
        )


def _promptir_float(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float in [0, 1] -> centre-cropped, clipped float64."""
    image = center_crop_to_multiple(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def _promptir_pair(restored: np.ndarray, target: np.ndarray) -> tuple:
    _check_pair(restored, target, "uint8 or float")
    check_promptir_size(restored.shape[0], restored.shape[1])
    return _promptir_float(restored), _promptir_float(target)


def psnr_promptir(restored: np.ndarray, target: np.ndarray) -> float:
    """PSNR (dB) under the ``promptir`` protocol; inputs (H, W, 3) uint8, or float in [0, 1] (clipped)."""
    x, y = _promptir_pair(restored, target)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim_promptir(restored: np.ndarray, target: np.ndarray) -> float:
    """SSIM under the ``promptir`` protocol (scikit-image defaults); inputs as for :func:`psnr_promptir`."""
    x, y = _promptir_pair(restored, target)
    kernel, c1, c2, cov_norm = ssim_settings("promptir")
    ssim = _ssim_map(x, y, kernel, c1, c2, cov_norm)
    return float(np.mean(ssim.mean(axis=(0, 1))))


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of (..., 3) RGB in [0, 1] -> (...) float64 on the [16, 235] scale, not rounded."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return 16.0 + rgb @ np.array(BT601_Y_WEIGHTS)


def _basicsr_float(image: np.ndarray, crop_border: int, test_y_channel: bool) -> np.ndarray:
    """(H, W, 3) uint8 -> (H - 2b, W - 2b, C) float64 on the 0..255 scale, C = 1 for Y else 3."""
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel:
        return rgb_to_y(image.astype(np.float64) / 255.0)[..., None]
    return image.astype(np.float64)


def check_crop_border(crop_border: int, shape: tuple) -> None:
    if not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise MetricInputError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    if 2 * crop_border >= min(shape[:2]):
        raise MetricInputError(f"crop_border={crop_border} removes the whole {shape[0]}×{shape[1]} image; "
                               "use a smaller one")


def psnr_basicsr(restored: np.ndarray, target: np.ndarray, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """PSNR (dB) as BasicSR's ``calculate_psnr``; inputs (H, W, 3) uint8 RGB."""
    _check_pair(restored, target, "uint8")
    check_crop_border(crop_border, restored.shape)
    x = _basicsr_float(restored, crop_border, test_y_channel)
    y = _basicsr_float(target, crop_border, test_y_channel)
    mse = float(np.mean((x - y) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_basicsr(restored: np.ndarray, target: np.ndarray, crop_border: int = 0, test_y_channel: bool = False) -> float:
    """SSIM as BasicSR's ``calculate_ssim`` (11×11 Gaussian, σ=1.5, valid region); inputs (H, W, 3) uint8 RGB."""
    _check_pair(restored, target, "uint8")
    check_crop_border(crop_border, restored.shape)
    x = _basicsr_float(restored, crop_border, test_y_channel)
    y = _basicsr_float(target, crop_border, test_y_channel)
    kernel, c1, c2, cov_norm = ssim_settings("basicsr_y" if test_y_channel else "basicsr_rgb")
    check_window(x.shape, len(kernel), "basicsr")
    ssim = _ssim_map(x, y, kernel, c1, c2, cov_norm)
    return float(np.mean(ssim.mean(axis=(0, 1))))


def evaluate_pair(restored: np.ndarray, target: np.ndarray, protocol: str, crop_border: int = 0) -> dict:
    """PSNR and SSIM of one (H, W, 3) uint8 RGB pair under ``protocol`` (one of :data:`PROTOCOLS`).

    ``crop_border`` applies to the basicsr protocols only; ``promptir`` has no border crop (its centre crop to a
    multiple of 16 is part of the protocol), so a non-zero value is rejected rather than silently ignored.
    Returns ``{"psnr": float, "ssim": float}``; PSNR is ``inf`` for identical images.
    """
    check_protocol(protocol)
    _check_pair(restored, target, "uint8")
    if protocol == "promptir":
        if crop_border:
            raise MetricInputError("the promptir protocol has no border crop; pass crop_border=0")
        return {"psnr": psnr_promptir(restored, target), "ssim": ssim_promptir(restored, target)}
    y_channel = protocol == "basicsr_y"
    return {
        "psnr": psnr_basicsr(restored, target, crop_border, y_channel),
        "ssim": ssim_basicsr(restored, target, crop_border, y_channel),
    }
