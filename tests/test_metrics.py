"""Metric protocols against scikit-image (promptir) and an independent scipy reference (basicsr)."""

import math
import re

import numpy as np
import pytest
import scipy.signal
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cplir.metrics import (
    PROTOCOLS,
    center_crop_to_multiple,
    evaluate_pair,
    psnr_basicsr,
    psnr_promptir,
    psnr_torch,
    rgb_to_y,
    ssim_promptir,
    ssim_torch,
)


def smooth_image(height, width, phase=0.0):
    """(H, W, 3) uint8 with structure at several scales."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [
        128 + 90 * np.sin(xx / (4 + c) + phase) * np.cos(yy / (6 - c)) + 30 * np.sin((xx + yy) / 2.5 + c)
        for c in range(3)
    ]
    return np.clip(np.round(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def noisy(image, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8)


def make_pairs():
    """(restored, target) uint8 pairs: odd sizes, mild to heavy (clipping) noise, a brightness shift."""
    pairs = []
    for seed, (height, width, sigma) in enumerate([(37, 53, 4), (100, 75, 15), (48, 64, 60), (41, 50, 25)]):
        target = smooth_image(height, width, phase=seed)
        pairs.append((noisy(target, sigma, seed), target))
    target = smooth_image(33, 35, phase=0.3)
    pairs.append((np.clip(target.astype(np.int16) + 12, 0, 255).astype(np.uint8), target))
    return pairs


PAIRS = make_pairs()


# --- independent references -------------------------------------------------------------------------------------


def promptir_crop(image):
    """PromptIR's crop_img(image, base=16), written out independently of the package."""
    h, w = image.shape[:2]
    crop_h, crop_w = h % 16, w % 16
    return image[crop_h // 2 : h - crop_h + crop_h // 2, crop_w // 2 : w - crop_w + crop_w // 2]


def skimage_promptir(restored, target):
    x = promptir_crop(restored).astype(np.float64) / 255
    y = promptir_crop(target).astype(np.float64) / 255
    with np.errstate(divide="ignore"):  # identical pair: scikit-image divides by a zero MSE and returns inf
        psnr = peak_signal_noise_ratio(y, x, data_range=1)
    return psnr, structural_similarity(y, x, data_range=1, channel_axis=-1)


def scipy_basicsr(restored, target, crop_border, y_channel):
    """BasicSR's calculate_psnr / calculate_ssim re-derived with scipy.signal.convolve2d (valid mode)."""
    x, y = restored.astype(np.float64), target.astype(np.float64)
    if crop_border:
        x = x[crop_border:-crop_border, crop_border:-crop_border]
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        x = (16 + 65.481 * x[..., 0] / 255 + 128.553 * x[..., 1] / 255 + 24.966 * x[..., 2] / 255)[..., None]
        y = (16 + 65.481 * y[..., 0] / 255 + 128.553 * y[..., 1] / 255 + 24.966 * y[..., 2] / 255)[..., None]
    mse = np.mean((x - y) ** 2)
    psnr = math.inf if mse == 0 else 10 * np.log10(255.0**2 / mse)
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    window = np.outer(g / g.sum(), g / g.sum())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssims = []
    for ch in range(x.shape[2]):
        a, b = x[..., ch], y[..., ch]

        def filt(img):
            return scipy.signal.convolve2d(img, window, mode="valid")

        mu_a, mu_b = filt(a), filt(b)
        var_a, var_b, cov = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        ssims.append(ssim_map.mean())
    return psnr, float(np.mean(ssims))


def assert_psnr_equal(actual, expected, tol=1e-4):
    if math.isinf(expected):
        assert math.isinf(actual) and actual > 0
    else:
        assert actual == pytest.approx(expected, abs=tol)


# --- numpy protocols ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair", PAIRS + [(PAIRS[1][1], PAIRS[1][1].copy())], ids=["37x53", "100x75", "48x64", "41x50", "shift", "same"]
)
def test_promptir_equals_scikit_image(pair):
    restored, target = pair
    result = evaluate_pair(restored, target, "promptir")
    psnr, ssim = skimage_promptir(restored, target)
    assert_psnr_equal(result["psnr"], psnr)
    assert result["ssim"] == pytest.approx(ssim, abs=1e-4)


def test_promptir_scores_the_centre_crop_only():
    # Damage only the rows PromptIR's crop drops (37 rows -> 32, offset 5 // 2 = 2): the score must not move.
    restored, target = PAIRS[0]
    damaged = restored.copy()
    damaged[:2] = 0
    damaged[34:] = 255
    assert evaluate_pair(damaged, target, "promptir") == evaluate_pair(restored, target, "promptir")
    damaged[2] = 0
    assert evaluate_pair(damaged, target, "promptir")["psnr"] < evaluate_pair(restored, target, "promptir")["psnr"]


def test_center_crop_offsets_follow_promptir():
    image = np.arange(35 * 53).reshape(35, 53)
    crop = center_crop_to_multiple(image)
    assert crop.shape == (32, 48)
    # remainders 3 and 5: start at 3 // 2 = 1 and 5 // 2 = 2, extra row/column removed at the bottom/right
    assert crop[0, 0] == image[1, 2] and crop[-1, -1] == image[32, 49]


def test_promptir_float_inputs_are_clipped():
    restored, target = PAIRS[2]
    floats = restored.astype(np.float64) / 255
    floats[floats > 0.9] = 1.3
    floats[floats < 0.1] = -0.2
    x = promptir_crop(np.clip(floats, 0, 1))
    y = promptir_crop(target) / 255
    assert psnr_promptir(floats, target) == pytest.approx(peak_signal_noise_ratio(y, x, data_range=1), abs=1e-4)
    assert ssim_promptir(floats, target) == pytest.approx(
        structural_similarity(y, x, data_range=1, channel_axis=-1), abs=1e-4
    )


@pytest.mark.parametrize("protocol", ["basicsr_rgb", "basicsr_y"])
@pytest.mark.parametrize("crop_border", [0, 4])
def test_basicsr_equals_scipy_reference(protocol, crop_border):
    pairs = PAIRS + [(PAIRS[0][1], PAIRS[0][1].copy())]
    for restored, target in pairs:
        result = evaluate_pair(restored, target, protocol, crop_border=crop_border)
        psnr, ssim = scipy_basicsr(restored, target, crop_border, protocol == "basicsr_y")
        assert_psnr_equal(result["psnr"], psnr)
        assert result["ssim"] == pytest.approx(ssim, abs=1e-4)


def test_crop_border_removes_border_pixels():
    restored, target = PAIRS[1]
    damaged = restored.copy()
    damaged[:4] = 0
    damaged[:, -4:] = 255
    for protocol in ("basicsr_rgb", "basicsr_y"):
        assert evaluate_pair(damaged, target, protocol, 4) == evaluate_pair(restored, target, protocol, 4)
        damaged_psnr = evaluate_pair(damaged, target, protocol, 0)["psnr"]
        assert damaged_psnr < evaluate_pair(restored, target, protocol, 0)["psnr"]


def test_identical_pair_is_perfect():
    image = PAIRS[3][1]
    for protocol in PROTOCOLS:
        result = evaluate_pair(image, image.copy(), protocol)
        assert result["psnr"] == math.inf
        assert result["ssim"] == pytest.approx(1.0, abs=1e-12)


def test_y_is_scored_higher_than_rgb():
    restored, target = PAIRS[1]
    assert evaluate_pair(restored, target, "basicsr_y")["psnr"] > evaluate_pair(restored, target, "basicsr_rgb")["psnr"]


def test_rgb_to_y_hand_computed():
    # 16 + 65.481·1 + 128.553·0.5 + 24.966·0 = 145.7575
    assert rgb_to_y(np.array([1.0, 0.5, 0.0])) == pytest.approx(145.7575, abs=1e-12)
    assert rgb_to_y(np.zeros((2, 2, 3))) == pytest.approx(np.full((2, 2), 16.0))
    assert rgb_to_y(np.ones(3)) == pytest.approx(235.0, abs=1e-12)
    assert rgb_to_y(np.array([0.2, 0.4, 0.6])) == pytest.approx(16 + 13.0962 + 51.4212 + 14.9796, abs=1e-12)


def golden_pair():
    """Deterministic 40×56 pair built from sin formulas (no random numbers)."""
    yy, xx = np.mgrid[0:40, 0:56].astype(np.float64)
    target = np.stack([127.5 + 100 * np.sin(xx / 5 + c) * np.cos(yy / 7 - c) for c in range(3)], axis=-1)
    ripple = 6 * np.cos(np.arange(40 * 56 * 3).reshape(40, 56, 3))
    restored = target + 18 * np.sin(xx * 1.3 + yy * 0.7)[..., None] + ripple
    return tuple(np.clip(np.round(a), 0, 255).astype(np.uint8) for a in (restored, target))


# Computed once with scikit-image 0.26 (promptir) and the scipy reference above (basicsr); hard-coded so a change
# in either library or in this package shows up.
GOLDEN = {
    ("promptir", 0): (25.58092263471966, 0.8359815755680774),
    ("basicsr_rgb", 0): (25.578265262329367, 0.7602609789260381),
    ("basicsr_y", 4): (27.052160707445815, 0.6898615385874941),
}


def test_golden_values():
    restored, target = golden_pair()
    for (protocol, crop_border), (psnr, ssim) in GOLDEN.items():
        result = evaluate_pair(restored, target, protocol, crop_border)
        assert result["psnr"] == pytest.approx(psnr, abs=1e-6), protocol
        assert result["ssim"] == pytest.approx(ssim, abs=1e-8), protocol


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: evaluate_pair(a, a, "bsr_y"), "promptir, basicsr_rgb, basicsr_y"),
        (lambda a: evaluate_pair(a, a[:-1], "basicsr_rgb"), "differ in shape"),
        (lambda a: evaluate_pair(a.astype(np.float32), a, "basicsr_rgb"), "uint8"),
        (lambda a: evaluate_pair(a[..., 0], a[..., 0], "promptir"), "(H, W, 3)"),
        (lambda a: evaluate_pair(a, a, "promptir", crop_border=4), "crop_border=0"),
        (lambda a: evaluate_pair(a[:12], a[:12], "promptir"), "too small"),
        (lambda a: evaluate_pair(a, a, "basicsr_rgb", crop_border=20), "crop_border"),
        (lambda a: evaluate_pair(a[:14, :14], a[:14, :14], "basicsr_y", crop_border=2), "11×11"),
    ],
)
def test_bad_input_raises_clear_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(PAIRS[0][1])


# --- torch versions -----------------------------------------------------------------------------------------------


def batch(images):
    """list of (H, W, 3) uint8 -> (B, 3, H, W) float64 in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).double() / 255


@pytest.mark.parametrize(
    "protocol, crop_border",
    [("promptir", 0), ("basicsr_rgb", 0), ("basicsr_rgb", 4), ("basicsr_y", 0), ("basicsr_y", 4)],
)
def test_torch_equals_numpy_batched(protocol, crop_border):
    target = smooth_image(37, 53)
    restored = [noisy(target, sigma, seed) for seed, sigma in enumerate([3, 20, 70])] + [target.copy()]
    targets = [target] * len(restored)
    psnr = psnr_torch(batch(restored), batch(targets), protocol, crop_border)
    ssim = ssim_torch(batch(restored), batch(targets), protocol, crop_border)
    assert psnr.shape == ssim.shape == (4,)
    for i, image in enumerate(restored):
        expected = evaluate_pair(image, target, protocol, crop_border)
        assert_psnr_equal(psnr[i].item(), expected["psnr"])
        assert ssim[i].item() == pytest.approx(expected["ssim"], abs=1e-4)


def test_torch_basicsr_quantises_and_promptir_does_not():
    target = smooth_image(32, 32)
    exact = batch([target])
    shifted = exact + 0.3 / 255  # rounds back to the same uint8 values
    assert psnr_torch(shifted, exact, "basicsr_rgb").item() == math.inf
    assert psnr_torch(shifted, exact, "promptir").item() == pytest.approx(10 * math.log10(255**2 / 0.09), abs=1e-6)


def test_torch_promptir_clips_float_output():
    target = smooth_image(40, 36)
    output = batch([noisy(target, 30, 0)]) * 1.4 - 0.2
    clipped_float = output[0].permute(1, 2, 0).numpy()
    assert psnr_torch(output, batch([target]), "promptir").item() == pytest.approx(
        psnr_promptir(clipped_float, target), abs=1e-8
    )
    assert ssim_torch(output, batch([target]), "promptir").item() == pytest.approx(
        ssim_promptir(clipped_float, target), abs=1e-8
    )


def test_torch_rejects_bad_input():
    image = batch([PAIRS[0][1]])
    with pytest.raises(ValueError, match="basicsr_y"):
        psnr_torch(image, image, "y")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ssim_torch(image[0], image[0], "basicsr_rgb")
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_torch(image, image[..., 1:], "promptir")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_convention_y_psnr_with_crop_equal_to_the_scale(scale):
    # The SR tables' score: PSNR on BT.601 Y, `scale` border pixels removed (protocol basicsr_y,
    # crop_border = scale). Checked against a separate numpy computation and a hand-computed value.
    rng = np.random.default_rng(scale)
    target = rng.integers(0, 256, (10 * scale, 7 * scale, 3), dtype=np.uint8)
    restored = np.clip(target.astype(int) + rng.integers(-9, 10, target.shape), 0, 255).astype(np.uint8)
    x, t = (np.moveaxis(img.astype(np.float64), -1, 0)[:, scale:-scale, scale:-scale] for img in (restored, target))
    y_restored = 16 + (65.481 * x[0] + 128.553 * x[1] + 24.966 * x[2]) / 255
    y_target = 16 + (65.481 * t[0] + 128.553 * t[1] + 24.966 * t[2]) / 255
    expected = 10 * math.log10(255**2 / np.mean((y_restored - y_target) ** 2))
    assert psnr_basicsr(restored, target, crop_border=scale, test_y_channel=True) == pytest.approx(expected, abs=1e-9)
    assert psnr_torch(batch([restored]), batch([target]), "basicsr_y", scale).item() == pytest.approx(expected,
                                                                                                     abs=1e-4)
    # Hand-computed: one green value off by 51 inside the kept region changes Y by 128.553 / 5, so
    # MSE = (128.553 / 5)² / N over the N = (H - 2s)(W - 2s) kept pixels; a change in the border does not count.
    flat = np.full((8 * scale, 8 * scale, 3), 100, np.uint8)
    off = flat.copy()
    off[scale, scale, 1] += 51
    off[0, 0] = 0
    kept = (8 * scale - 2 * scale) ** 2
    golden = 10 * math.log10(255**2 * kept / (128.553 / 5) ** 2)
    assert psnr_basicsr(off, flat, crop_border=scale, test_y_channel=True) == pytest.approx(golden, abs=1e-9)
