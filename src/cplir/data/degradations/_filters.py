"""Linear filters used by the recipes: Gaussian kernels, separable and FFT convolution, line kernels.

Image filters pad with numpy's ``"reflect"`` mode (``d c b | a b c d | c b a``, OpenCV's default border), so a
filtered image keeps its size and has no dark frame.
"""

from __future__ import annotations

import math

import numpy as np

from cplir.data.degradations._common import check_number, check_odd


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian of odd length ``size``, shape (size,)."""
    size = check_odd("kernel_size", size)
    sigma = check_number("sigma", sigma, 0.0, low_open=True)
    x = np.arange(size, dtype=np.float64) - size // 2
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Normalised isotropic 2-D Gaussian kernel, shape (size, size) with ``size`` odd."""
    k = gaussian_kernel_1d(size, sigma)
    return np.outer(k, k)


def gaussian_size(sigma: float) -> int:
    """Odd kernel length covering ±3σ."""
    return 2 * math.ceil(3 * sigma) + 1


def separable_filter(x: np.ndarray, kernel_1d: np.ndarray) -> np.ndarray:
    """Convolve rows and columns of ``x`` (H, W) or (H, W, C) with the same odd 1-D kernel; same shape, float64.

    Each axis is filtered by FFT, so the cost does not grow with the kernel length (illumination maps use
    kernels of a hundred taps and more).
    """
    taps = len(kernel_1d)
    out = x.astype(np.float64)
    for axis in (0, 1):
        moved = np.moveaxis(out, axis, -1)
        widths = [(0, 0)] * (moved.ndim - 1) + [(taps // 2, taps // 2)]
        padded = np.pad(moved, widths, mode="reflect")
        n = padded.shape[-1] + taps - 1
        full = np.fft.irfft(np.fft.rfft(padded, n) * np.fft.rfft(kernel_1d, n), n)
        # The "valid" part of the full convolution of the padded signal is the centred result.
        out = np.moveaxis(full[..., taps - 1 : taps - 1 + moved.shape[-1]], -1, axis)
    return out


def full_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear 2-D convolution of two small non-negative kernels, shape (ha+hb-1, wa+wb-1)."""
    shape = (a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1)
    out = np.fft.irfft2(np.fft.rfft2(a, shape) * np.fft.rfft2(b, shape), shape)
    return np.maximum(out, 0.0)  # drop the FFT's round-off below zero


def fft_convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve ``x`` (H, W) with an odd-sized ``kernel`` (kh, kw); reflect padding, output (H, W).

    The FFT keeps large streak and flake kernels cheap on megapixel images.
    """
    kh, kw = kernel.shape
    h, w = x.shape
    padded = np.pad(x.astype(np.float64), ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="reflect")
    shape = (padded.shape[0] + kh - 1, padded.shape[1] + kw - 1)
    full = np.fft.irfft2(np.fft.rfft2(padded, shape) * np.fft.rfft2(kernel, shape), shape)
    # The "valid" part of the full convolution of the padded image is the centred result.
    return full[kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w]


def line_kernel(length: float, angle: float) -> np.ndarray:
    """Anti-aliased line through the centre of an odd square kernel, normalised to sum 1.

    Args:
        length: line length in pixels (> 0).
        angle: degrees from vertical; positive turns the line counter-clockwise on screen (its top leans left,
            so it runs from top-left to bottom-right).

    Returns:
        (K, K) kernel with K the smallest odd size that holds the line.
    """
    length = check_number("length", length, 0.0, low_open=True)
    theta = math.radians(check_number("angle", angle, -math.inf))
    size = 2 * math.ceil((length - 1) / 2) + 1
    centre = size // 2
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * math.ceil(length) + 1) if length > 1 else np.zeros(1)
    rows, cols = centre + t * math.cos(theta), centre + t * math.sin(theta)
    kernel = np.zeros((size, size))
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    # Bilinear splatting: each sample spreads over its four neighbouring pixels.
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = np.clip(r0 + dr, 0, size - 1), np.clip(c0 + dc, 0, size - 1)
        np.add.at(kernel, (rr, cc), weight)
    return kernel / kernel.sum()
