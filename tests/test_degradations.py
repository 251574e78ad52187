"""Degradation synthesis (docs/datasets.md): contracts, reference formulas (MiOIR, PromptIR) and the visible
effect of every degradation."""

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
from PIL import Image
from skimage import data

from cplir.data.degradations import (
    CDD11_CLASSES,
    DEGRADATIONS,
    MIOIR_TASKS,
    PROMPTIR_SIGMAS,
    add_gaussian_blur,
    add_gaussian_noise,
    add_gaussian_noise_promptir,
    add_haze,
    add_rain,
    add_snow,
    bicubic_down_up,
    bicubic_downscale,
    cdd11_composite,
    degrade,
    diffjpeg,
    gaussian_kernel,
    imresize_matlab,
    jpeg_compress,
    low_light_gamma,
    low_light_retinex,
    pseudo_depth,
    scale_depth,
    size_ratio,
)
from cplir.data.degradations.rain import rain_streaks
from golden import load_golden

H, W = 48, 64


def rng(seed):
    return np.random.default_rng(seed)


def flat(value):
    return np.full((H, W, 3), value, dtype=np.uint8)


@pytest.fixture(scope="module")
def photo():
    """The astronaut photograph shrunk to 48×64: real edges and texture."""
    return np.array(Image.fromarray(data.astronaut()).resize((W, H), Image.Resampling.LANCZOS))


def gradient_energy(img):
    x = img.astype(np.float64)
    return (np.diff(x, axis=0) ** 2).mean() + (np.diff(x, axis=1) ** 2).mean()


def high_frequency_energy(img):
    """Spectral energy of the grey image outside the lowest quarter of frequencies in each axis."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(img.astype(np.float64).mean(axis=2)))) ** 2
    cy, cx = H // 2, W // 2
    spectrum[cy - H // 8 : cy + H // 8 + 1, cx - W // 8 : cx + W // 8 + 1] = 0
    return spectrum.sum()


# ---------------------------------------------------------------- contract of every registered degradation


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_contract_shape_dtype_purity_determinism(name, photo):
    original = photo.copy()
    out = degrade(photo, name, rng(7))
    ratio = size_ratio(name, {})
    assert out.shape == (H // ratio, W // ratio, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(photo, original)  # the input is never modified
    np.testing.assert_array_equal(out, degrade(photo, name, rng(7)))
    others = [degrade(photo, name, rng(seed)) for seed in (8, 9, 10)]
    if name in ("sr", "downscale"):  # the deterministic recipes
        assert all(np.array_equal(out, o) for o in others)
    else:
        assert all(not np.array_equal(out, o) for o in others)
    assert out.shape != photo.shape or not np.array_equal(out, photo)


def test_registry_names():
    assert MIOIR_TASKS == ("sr", "blur", "noise", "jpeg", "rain", "haze", "lowlight")
    assert set(MIOIR_TASKS) | {"noise_promptir", "snow", "downscale"} | {f"cdd11_{c}" for c in CDD11_CLASSES} == set(
        DEGRADATIONS)


def test_degrade_equals_direct_call_with_level_and_overrides(photo):
    np.testing.assert_array_equal(
        degrade(photo, "blur", rng(3), level="ood", kernel_size=9),
        add_gaussian_blur(photo, rng(3), level="ood", kernel_size=9),
    )
    np.testing.assert_array_equal(degrade(photo, "noise_promptir", rng(3), sigma=25),
                                  add_gaussian_noise_promptir(photo, 25, rng(3)))
    np.testing.assert_array_equal(degrade(photo, "cdd11_low_rain", rng(3)), cdd11_composite(photo, "low_rain", rng(3)))


def test_overriding_one_parameter_keeps_the_other_draws(photo):
    # Parameters are always drawn, so fixing the kernel size to the drawn one changes nothing.
    drawn_size = int(rng(5).choice(range(7, 22, 2)))
    fixed = add_gaussian_blur(photo, rng(5), kernel_size=drawn_size)
    np.testing.assert_array_equal(add_gaussian_blur(photo, rng(5)), fixed)
    assert not np.array_equal(add_gaussian_blur(photo, rng(5), kernel_size=21), fixed)


@pytest.mark.parametrize(
    "name, level, overrides",
    [
        ("blurry", "id", {}),
        ("blur", "hard", {}),
        ("snow", "ood", {}),
        ("sr", "ood", {}),
        ("blur", "id", {"radius": 3}),
        ("blur", "id", {"kernel_size": 8}),
        ("blur", "id", {"sigma": 0}),
        ("noise", "id", {"sigma": -1}),
        ("noise_promptir", "id", {"sigma": float("nan")}),
        ("jpeg", "id", {"quality": 0}),
        ("jpeg", "id", {"quality": 50.5}),
        ("rain", "id", {"width": 4}),
        ("rain", "id", {"density": 0}),
        ("haze", "id", {"airlight": 1.5}),
        ("haze", "id", {"depth": np.zeros((3, 3))}),
        ("haze", "id", {"depth": np.zeros((H, W)), "homogeneous": True}),
        ("lowlight", "id", {"gamma": 0}),
        ("snow", "id", {"density": 0}),
        ("sr", "id", {"mode": "bilinear"}),
        ("sr", "id", {"scale": 0}),
        ("cdd11_haze", "id", {"depth": np.ones((H + 1, W))}),
    ],
)
def test_bad_names_levels_and_values_raise_value_error(name, level, overrides, photo):
    with pytest.raises(ValueError):
        degrade(photo, name, rng(0), level=level, **overrides)


@pytest.mark.parametrize(
    "img, generator",
    [
        (np.zeros((H, W, 3), np.float32), rng(0)),
        (np.zeros((H, W), np.uint8), rng(0)),
        (np.zeros((H, W, 4), np.uint8), rng(0)),
        (np.zeros((H, W, 3), np.uint8), 0),
    ],
)
def test_bad_image_or_generator_raises_value_error(img, generator):
    with pytest.raises(ValueError, match="uint8 RGB|numpy.random.Generator"):
        add_gaussian_noise(img, generator)


def test_cdd11_unknown_class():
    with pytest.raises(ValueError, match="CDD-11 class"):
        cdd11_composite(flat(100), "rain_snow", rng(0))


# ---------------------------------------------------------------- noise


@pytest.mark.parametrize("sigma", PROMPTIR_SIGMAS)
def test_promptir_noise_is_truncated_reference(sigma):
    grey = flat(128)
    out = add_gaussian_noise_promptir(grey, sigma, rng(1))
    noisy = np.clip(grey + sigma * rng(1).standard_normal(grey.shape), 0, 255)
    np.testing.assert_array_equal(out, np.floor(noisy))
    rounded = np.rint(noisy)
    assert (out <= rounded).all() and (out < rounded).mean() > 0.4  # truncation, not rounding
    assert abs(out.astype(np.float64).std() - sigma) < 0.1 * sigma


def test_promptir_noise_draws_a_benchmark_sigma():
    stds = {round((add_gaussian_noise_promptir(flat(128), None, rng(s)) - 128.0).std() / 5) * 5 for s in range(12)}
    assert stds == {15, 25, 50}


def test_mioir_noise_reference_and_std():
    grey = flat(128)
    generator = rng(2)
    sigma = round(generator.uniform(15, 50))
    expected = np.clip(np.rint(grey + sigma * generator.standard_normal(grey.shape)), 0, 255)
    np.testing.assert_array_equal(add_gaussian_noise(grey, rng(2)), expected)
    out = add_gaussian_noise(grey, rng(2), sigma=30)
    assert abs((out - 128.0).std() - 30) < 3.0
    for seed in range(4):
        id_std = (add_gaussian_noise(grey, rng(seed)) - 128.0).std()
        ood_std = (add_gaussian_noise(grey, rng(seed), level="ood") - 128.0).std()
        assert 15 * 0.9 < id_std < 50 * 1.1 and 50 * 0.9 < ood_std < 70 * 1.1


# ---------------------------------------------------------------- blur


def test_gaussian_kernel_is_odd_normalised_and_centred():
    k = gaussian_kernel(9, 2.0)
    assert k.shape == (9, 9) and k.sum() == pytest.approx(1.0)
    assert np.unravel_index(k.argmax(), k.shape) == (4, 4)
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(8, 2.0)


def test_blur_matches_reflect_convolution_and_removes_gradients(photo):
    out = add_gaussian_blur(photo, rng(0), kernel_size=9, sigma=2.0)
    k = gaussian_kernel(9, 2.0)
    # scipy's "mirror" border is numpy's "reflect" (d c b | a b c d).
    planes = [scipy.ndimage.convolve(photo[..., c].astype(np.float64), k, mode="mirror") for c in range(3)]
    reference = np.stack(planes, axis=-1)
    assert np.abs(out - np.rint(reference)).max() <= 1
    assert gradient_energy(out) < 0.5 * gradient_energy(photo)
    assert gradient_energy(add_gaussian_blur(photo, rng(0), level="ood")) < gradient_energy(out)


# ---------------------------------------------------------------- super-resolution


@pytest.mark.parametrize("mode", ["torch", "pil", "matlab"])
def test_sr_keeps_size_and_loses_high_frequencies(mode, photo):
    out = bicubic_down_up(photo, mode=mode)
    assert out.shape == photo.shape
    assert high_frequency_energy(out) < 0.3 * high_frequency_energy(photo)
    assert abs(out.mean() - photo.mean()) < 3


def test_sr_modes_differ(photo):
    outs = [bicubic_down_up(photo, mode=mode) for mode in ("torch", "pil", "matlab")]
    assert not any(np.array_equal(a, b) for i, a in enumerate(outs) for b in outs[i + 1:])


def test_matlab_imresize_equals_the_published_reference():
    # BasicSR's MATLAB-equivalent imresize (tests/golden/README.md); it computes in float32, we in float64.
    golden = load_golden("imresize_matlab")
    image = golden["input"].numpy()
    for s in (2, 3, 4):
        ours = imresize_matlab(image / 255.0, (24 // s, 24 // s))
        np.testing.assert_allclose(ours, golden["outputs"][f"down{s}"].numpy(), atol=1e-6)
        lr = bicubic_downscale(image, scale=s)  # the 8-bit LR input: the reference rounded
        assert np.abs(lr.astype(np.float64) - golden["outputs"][f"down{s}"].numpy() * 255).max() <= 0.5 + 1e-3
    np.testing.assert_allclose(imresize_matlab(image[:8, :6] / 255.0, (24, 18)), golden["outputs"]["up3"].numpy(),
                               atol=1e-6)


def test_matlab_imresize_keeps_constants_and_averages_blocks():
    flat = np.full((12, 18, 3), 77.0)
    np.testing.assert_allclose(imresize_matlab(flat, (4, 6)), flat[:4, :6])
    # A horizontal ramp stays a ramp sampled at the low-resolution pixel centres (away from the mirrored border).
    ramp = np.broadcast_to(np.arange(24.0)[None, :, None], (8, 24, 3))
    out = imresize_matlab(ramp, (2, 6))
    np.testing.assert_allclose(out[0, 2:4, 0], [4 * 2 + 1.5, 4 * 3 + 1.5])


def test_downscale_needs_a_multiple_of_the_scale(photo):
    assert bicubic_downscale(photo, scale=4).shape == (H // 4, W // 4, 3)
    with pytest.raises(ValueError, match="multiple"):
        bicubic_downscale(photo[:47], scale=4)
    with pytest.raises(ValueError, match="mode"):
        bicubic_downscale(photo, scale=2, mode="lanczos")


def test_sr_rounds_once_after_both_resizes_as_mioir():
    """MiOIR's resize_tensor: interpolate(scale_factor=0.25) then back to the size, one rounding at the end."""
    import torch
    import torch.nn.functional as F

    img = np.ascontiguousarray(data.astronaut()[:50, :61])  # sides not divisible by 4
    t = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    small = F.interpolate(t, scale_factor=0.25, mode="bicubic")
    reference = F.interpolate(small, size=(50, 61), mode="bicubic")[0].permute(1, 2, 0).numpy()
    out = bicubic_down_up(img)
    np.testing.assert_array_equal(out, np.clip(np.rint(reference), 0, 255))
    rounded_between = F.interpolate(small.round().clamp(0, 255), size=(50, 61), mode="bicubic")
    assert not np.array_equal(out, np.clip(np.rint(rounded_between[0].permute(1, 2, 0).numpy()), 0, 255))


# ---------------------------------------------------------------- JPEG


@pytest.mark.parametrize("codec", ["diffjpeg", "pillow"])
def test_jpeg_block_artefacts_on_smooth_image(codec):
    y, x = np.mgrid[0:H, 0:W]
    smooth = np.stack([60 + 2 * x + 20 * np.sin(y / 9), 90 + y + x, 160 - 1.5 * y + 15 * np.cos(x / 11)], -1)
    smooth = np.clip(smooth, 0, 255).astype(np.uint8)
    out = jpeg_compress(smooth, rng(0), quality=10, codec=codec)
    steps = np.abs(np.diff(out.astype(np.float64), axis=1)).mean(axis=(0, 2))  # step between columns j and j+1
    across = steps[7::8].mean()  # pairs (7, 8), (15, 16), ... straddle a block boundary
    inside = np.delete(steps, np.arange(7, W - 1, 8)).mean()
    assert across > 1.5 * inside
    error = lambda q: np.abs(jpeg_compress(smooth, rng(0), quality=q, codec=codec) - smooth.astype(np.float64)).mean()
    assert error(10) > error(70)


def test_jpeg_pillow_codec_is_a_baseline_file_with_420_subsampling(photo):
    def pillow(subsampling):
        buffer = io.BytesIO()
        Image.fromarray(photo).save(buffer, format="JPEG", quality=40, subsampling=subsampling)
        return np.array(Image.open(buffer).convert("RGB"))

    out = jpeg_compress(photo, rng(0), quality=40, codec="pillow")
    np.testing.assert_array_equal(out, pillow("4:2:0"))
    assert not np.array_equal(out, pillow("4:4:4"))
    assert not np.array_equal(jpeg_compress(photo, rng(0), quality=40), out)  # the default is DiffJPEG


def test_diffjpeg_equals_its_definition_on_a_small_image():
    """Two 8x8 luma blocks and one chroma block, written out with scipy's orthonormal DCT."""
    from scipy.fft import dctn, idctn

    gen = rng(3)
    img = gen.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    q = 35
    factor = 5000 / q / 100
    luma_q = np.array([[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
                       [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
                       [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
                       [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]]).T * factor
    chroma_q = np.full((8, 8), 99.0)
    chroma_q[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
    chroma_q = chroma_q.T * factor
    r, g, b = (img[..., c].astype(np.float64) for c in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128

    def code(block, table):
        return idctn(np.rint(dctn(block - 128, norm="ortho") / table) * table, norm="ortho") + 128

    y_out = np.block([[code(y[i:i + 8, j:j + 8], luma_q) for j in (0, 8)] for i in (0, 8)])
    cb_out, cr_out = (np.kron(code(c.reshape(8, 2, 8, 2).mean(axis=(1, 3)), chroma_q), np.ones((2, 2)))
                      for c in (cb, cr))
    rgb = np.stack([y_out + 1.402 * (cr_out - 128),
                    y_out - 0.344136 * (cb_out - 128) - 0.714136 * (cr_out - 128),
                    y_out + 1.772 * (cb_out - 128)], axis=-1)
    np.testing.assert_allclose(diffjpeg(img, q), np.clip(rgb, 0, 255), atol=1e-9)
    np.testing.assert_array_equal(jpeg_compress(img, rng(0), quality=q), np.clip(np.rint(rgb), 0, 255))


def test_diffjpeg_matches_the_published_code():
    """Golden output of BasicSR's DiffJPEG (float32 torch) as MiOIR calls it, then rounded to 8 bits; float64 here
    may land on the other side of a rounding at a handful of pixels."""
    import torch

    golden = torch.load(Path(__file__).parent / "golden" / "diffjpeg.pt", weights_only=True)
    img = golden["input"].numpy()
    for quality, expected in zip(golden["quality"].tolist(), golden["output"].numpy()):
        out = jpeg_compress(img, rng(0), quality=quality)
        diff = np.abs(out.astype(int) - expected)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.995, quality


# ---------------------------------------------------------------- rain


def test_rain_streak_length_is_scaled_and_the_layer_truncated_as_mioir(monkeypatch):
    """MiOIR rotates its streak kernel with the scale 1 − length/100 (20 -> 16 pixels, 40 -> 24) and converts the
    normalised layer to uint8 by truncation."""
    import cplir.data.degradations.rain as rain

    drawn = []
    original = rain.line_kernel
    monkeypatch.setattr(rain, "line_kernel", lambda length, angle: drawn.append(length) or original(length, angle))
    layers = [rain_streaks((32, 32), rng(0), 80, 3, length, 10) for length in (20, 40)]
    assert drawn == pytest.approx([16.0, 24.0])
    assert all(layer.dtype == np.uint8 and layer.max() == 255 for layer in layers)
    monkeypatch.setattr(rain, "fft_convolve", lambda drops, kernel: np.array([[0.0, 1.0, 2.0]]))
    assert rain_streaks((1, 3), rng(0), 80, 3, 20, 0).tolist() == [[0, 127, 255]]  # 127.5 truncated
    with pytest.raises(ValueError, match="length"):
        add_rain(flat(40), rng(0), length=100)


def streak_orientation(residual):
    """Angle of the dominant streak direction in degrees from vertical (positive: top leans left)."""
    gy, gx = np.gradient(residual.astype(np.float64))
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    gradient_angle = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))  # from the x axis, rows pointing down
    # Streaks run across the dominant gradient: a streak tilted by θ has its gradient at -θ from the x axis.
    return (-gradient_angle + 90) % 180 - 90


@pytest.mark.parametrize("angle", [-30, 0, 25])
def test_rain_adds_bright_streaks_at_the_requested_angle(angle):
    dark = flat(40)
    out = add_rain(dark, rng(4), density=150, width=3, length=30, angle=angle)
    residual = out.astype(np.int16) - dark
    assert (residual >= 0).all() and out.mean() > dark.mean() + 2
    np.testing.assert_array_equal(residual[..., 0], residual[..., 2])  # the same streaks on every channel
    assert abs(streak_orientation(residual[..., 0]) - angle) < 15


def test_rain_ood_is_denser(photo):
    # Same seed: identical width, length and angle; only the density range differs.
    added = lambda level: (add_rain(flat(40), rng(6), level=level) > 40).mean()
    assert added("ood") > added("id")


# ---------------------------------------------------------------- haze


def test_haze_formula_brightens_and_flattens_far_regions(photo):
    depth = np.broadcast_to(np.linspace(0.0, 10.0, W), (H, W))  # farther to the right
    out = add_haze(photo, rng(0), beta=2.0, airlight=0.9, depth=depth)
    t = np.exp(-2.0 * depth / 10.0)[..., None]
    np.testing.assert_array_equal(out, np.clip(np.rint(photo * t + 255 * 0.9 * (1 - t)), 0, 255))
    near, far = slice(0, W // 2), slice(W // 2, W)
    gain = lambda part: out[:, part].mean() - photo[:, part].mean()
    contrast = lambda part: out[:, part].std() / photo[:, part].std()
    assert 0 < gain(near) < gain(far)
    assert contrast(far) < contrast(near) < 1


def test_haze_divides_a_depth_map_by_its_maximum_as_mioir(photo):
    depth = np.broadcast_to(np.linspace(2.0, 10.0, W), (H, W))  # nearest point 2/10 of the farthest
    out = add_haze(photo, rng(0), beta=1.5, airlight=0.85, depth=depth)
    t = np.exp(-1.5 * depth / 10.0)[..., None]  # depth / max, not min-max (which would make the near edge d=0)
    np.testing.assert_array_equal(out, np.clip(np.rint(photo * t + 255 * 0.85 * (1 - t)), 0, 255))
    np.testing.assert_array_equal(scale_depth(depth), depth / 10.0)
    crop = scale_depth(depth)[:, :20]  # a crop of a normalised scene keeps its scale
    np.testing.assert_array_equal(add_haze(photo[:, :20], rng(0), beta=1.5, airlight=0.85, depth=crop), out[:, :20])
    with pytest.raises(ValueError, match="non-negative"):
        scale_depth(np.full((4, 4), -1.0))


def test_homogeneous_haze_and_pseudo_depth(photo):
    out = add_haze(photo, rng(0), beta=1.0, airlight=1.0, homogeneous=True)
    t = np.exp(-1.0)
    np.testing.assert_array_equal(out, np.rint(photo * t + 255 * (1 - t)))
    d = pseudo_depth(flat(90))
    assert d.shape == (H, W) and d.min() == 0.0 and d.max() == 1.0
    assert d[: H // 4].mean() > d[-H // 4 :].mean()  # the top of the frame is farther
    default = add_haze(photo, rng(1))
    np.testing.assert_array_equal(default, add_haze(photo, rng(1), depth=pseudo_depth(photo)))


# ---------------------------------------------------------------- low light


def test_gamma_low_light_darkens_monotonically(photo):
    means = [low_light_gamma(photo, rng(0), gamma=g).mean() for g in (1.0, 1.5, 2.0, 3.0, 4.0)]
    assert means[0] == pytest.approx(photo.mean())
    assert all(a > b for a, b in zip(means, means[1:]))
    np.testing.assert_array_equal(low_light_gamma(photo, rng(0), gamma=2.0), np.rint(255 * (photo / 255) ** 2))
    assert low_light_gamma(photo, rng(3), level="ood").mean() < low_light_gamma(photo, rng(3)).mean()


def test_retinex_low_light_darkens_with_noise():
    grey = flat(128)
    out = low_light_retinex(grey, rng(0), exponent=2.0, noise_sigma=0.05)
    # Flat image: L = 128/255 everywhere, so I = L^2 plus noise of σ = 0.05·255.
    assert abs(out.mean() - 255 * (128 / 255) ** 2) < 1.5
    assert abs(out.std() - 0.05 * 255) < 0.1 * 0.05 * 255
    assert low_light_retinex(grey, rng(0)).mean() < 0.6 * 128


# ---------------------------------------------------------------- snow


def test_snow_adds_localised_white_flakes():
    dark = flat(30)
    out = add_snow(dark, rng(0), density=0.006)
    residual = out.astype(np.int16) - dark
    assert (residual >= 0).all() and out.mean() > dark.mean()
    covered = (residual > 20).any(axis=2).mean()
    assert 0.01 < covered < 0.5  # flakes, not a veil
    assert out.max() > 200  # flake centres are near white
    np.testing.assert_array_equal(out[..., 0], out[..., 1])  # white blended into grey stays grey
    denser = (add_snow(dark, rng(0), density=0.02) > 50).mean()
    assert denser > (out > 50).mean()


# ---------------------------------------------------------------- CDD-11


def test_cdd11_classes():
    assert len(CDD11_CLASSES) == len(set(CDD11_CLASSES)) == 11
    assert not any("rain" in c and "snow" in c for c in CDD11_CLASSES)


@pytest.mark.parametrize("cls", ["haze", "rain", "snow", "haze_rain", "haze_snow"])
def test_cdd11_low_light_composites_are_darker(cls, photo):
    # The same seed gives the same rain/snow/haze draws, so only the low-light step differs.
    assert cdd11_composite(photo, f"low_{cls}", rng(2)).mean() < cdd11_composite(photo, cls, rng(2)).mean() - 5


@pytest.mark.parametrize(
    "cls, steps",
    [("low_haze", ["low", "haze"]), ("low_haze_rain", ["low", "rain", "haze"]), ("haze_snow", ["snow", "haze"])],
)
def test_cdd11_composite_applies_components_in_order(cls, steps, photo):
    depth = pseudo_depth(photo)
    expected = photo
    for step in steps:
        expected = cdd11_composite(expected, step, rng(11), depth=depth)
    np.testing.assert_array_equal(cdd11_composite(photo, cls, rng(11)), expected)
    # The opposite order (haze before low light) gives a different image.
    if cls == "low_haze":
        swapped = cdd11_composite(cdd11_composite(photo, "haze", rng(11)), "low", rng(11))
        assert not np.array_equal(swapped, expected)

