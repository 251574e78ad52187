"""Composable inference: tiles and their blending, x8 self-ensemble, precision, global routing, degradation
inference from a routing calibration, the Restorer API, ONNX export."""

import numpy as np
import pytest
import torch
from inference_toys import ToyConv, ToyRouted, half_dark_image

from cplir.errors import CheckpointError, ConfigError, InputSizeError
from cplir.inference import Restorer, global_routing, run_ensemble, run_padded, run_tiled
from cplir.inference.calibration import check_calibration, degradation_posterior, selected_components
from cplir.inference.ensemble import dihedral, inverse_dihedral
from cplir.inference.tiling import auto_tile_size, count_tiles, edge_ramp, tile_starts


def _toy(cls=ToyConv, **kwargs):
    torch.manual_seed(0)
    return cls(**kwargs).eval()


# --- tiles --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,tile,overlap", [(100, 32, 8), (33, 32, 8), (64, 32, 0), (121, 64, 8), (20, 32, 8)])
def test_tiles_cover_the_image_with_even_overlaps(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    length = min(tile, size)
    assert starts[0] == 0 and starts[-1] + length == size
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(length - g >= overlap for g in gaps)  # every overlap at least the one asked for
    assert max(gaps, default=0) - min(gaps, default=0) <= 1  # spread evenly


def test_tile_overlap_must_be_smaller_than_the_tile():
    with pytest.raises(InputSizeError, match="overlap"):
        tile_starts(100, 16, 16)
    with pytest.raises(ConfigError, match="overlap"):
        Restorer(_toy(), tile=16, tile_overlap=16, device="cpu")


def test_edge_ramp_is_zero_in_the_margin_and_complements_the_neighbour():
    # two tiles of 16 sharing 8 pixels, margin 2: the first's falling ramp and the second's rising one sum to 1
    first, second = edge_ramp(16, 0, 8, 2), edge_ramp(16, 8, 0, 2)
    assert torch.all(first[:8] == 1) and torch.all(first[-2:] == 0) and torch.all(second[:2] == 0)
    torch.testing.assert_close(first[8:] + second[:8], torch.ones(8))
    assert torch.all(first[8:].diff() <= 0) and torch.all(second[:8].diff() >= 0)


def test_tiled_equals_whole_for_a_small_receptive_field():
    model = _toy()  # receptive radius 2 <= margin (overlap 16 // 4)
    x = torch.rand(1, 3, 45, 70)
    with torch.no_grad():
        whole = model(x)
        tiled = run_tiled(model, x, tile=24, overlap=16)
    assert count_tiles(45, 70, 24, 16) > 4
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_tiled_output_of_a_scale_2_model_is_twice_the_size():
    model = _toy(scale=2)
    x = torch.rand(1, 3, 30, 41)
    with torch.no_grad():
        tiled = run_tiled(model, x, tile=16, overlap=8)
        whole = model(x)
    assert tiled.shape == (1, 3, 60, 82)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_blending_cross_fades_instead_of_cutting():
    # A "model" that paints each tile with its own constant: the blend must ramp from one to the next.
    def constant_per_tile(t):
        return torch.full_like(t, float(t.mean() > 0.5))

    x = torch.zeros(1, 1, 8, 48)
    x[..., 24:] = 1.0
    out = run_tiled(constant_per_tile, x, tile=28, overlap=8)[0, 0, 0]  # tiles [0, 28) and [20, 48)
    assert torch.all(out[:20] == 0) and torch.all(out[28:] == 1)
    steps = out.diff()
    assert torch.all(steps >= 0) and steps.max() <= 1 / 4 + 1e-6  # the ramp spans 8 - 2*2 = 4 pixels, no seam
    torch.testing.assert_close(out[20:28], torch.tensor([0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1]))


def test_tiling_a_model_that_needs_a_size_multiple_pads_each_tile():
    model = _toy(size_multiple=8)
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        out = run_tiled(lambda t: run_padded(model, t), x, tile=24, overlap=8)
    assert out.shape == x.shape


def test_auto_tile_size_follows_the_memory_budget():
    model = _toy(size_multiple=8)
    # the largest activation is conv1's output, 8 channels x 4 bytes per pixel; the peak is 4x that
    per_pixel = 4 * 8 * 4
    assert auto_tile_size(model, torch.device("cpu"), budget=per_pixel * 300 ** 2) == 296
    assert auto_tile_size(model, torch.device("cpu"), budget=per_pixel * 10 ** 2) == 64  # the floor
    assert auto_tile_size(model, torch.device("cpu")) % 8 == 0  # from the machine's available memory


def test_restorer_with_auto_tiles_restores_small_images_whole():
    restorer = Restorer(_toy(size_multiple=8), tile="auto", device="cpu")
    assert restorer.tile_size(20, 30) is None
    tile = restorer.tile_size(100000, 10)
    assert tile is not None and tile % 8 == 0 and tile == restorer.tile_size(100000, 10)  # computed once
    assert restorer.restore_tensor(torch.rand(1, 3, 20, 30)).tiles == 1
    with pytest.raises(ConfigError, match="tile"):
        Restorer(_toy(), tile=0, device="cpu")


# --- self-ensemble ------------------------------------------------------------------------------------------------
def test_dihedral_transforms_are_inverted_on_non_square_images():
    x = torch.rand(1, 2, 5, 7)
    outputs = [dihedral(x, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outputs}) == 8
    for k, y in enumerate(outputs):
        torch.testing.assert_close(inverse_dihedral(y, k), x, rtol=0, atol=0)


def test_ensemble_is_the_mean_of_the_eight_transformed_passes():
    model = _toy()
    x = torch.rand(1, 3, 12, 17)
    transforms = [  # (forward, inverse) written out by hand
        (lambda t: t, lambda t: t),
        (lambda t: t.rot90(1, (2, 3)), lambda t: t.rot90(-1, (2, 3))),
        (lambda t: t.rot90(2, (2, 3)), lambda t: t.rot90(2, (2, 3))),
        (lambda t: t.rot90(3, (2, 3)), lambda t: t.rot90(1, (2, 3))),
        (lambda t: t.flip(3), lambda t: t.flip(3)),
        (lambda t: t.rot90(1, (2, 3)).flip(3), lambda t: t.flip(3).rot90(-1, (2, 3))),
        (lambda t: t.rot90(2, (2, 3)).flip(3), lambda t: t.flip(2)),
        (lambda t: t.transpose(2, 3), lambda t: t.transpose(2, 3)),
    ]
    with torch.no_grad():
        expected = torch.stack([inv(model(fwd(x))) for fwd, inv in transforms]).mean(0)
        ensembled = run_ensemble(model, x)
        plain = model(x)
    torch.testing.assert_close(ensembled, expected, atol=1e-6, rtol=0)
    assert (ensembled - plain).abs().max() > 1e-3  # the toy is not equivariant: the ensemble changes the output


def test_ensemble_of_a_scale_2_model_maps_outputs_back():
    model = _toy(scale=2)
    with torch.no_grad():
        out = run_ensemble(model, torch.rand(1, 3, 6, 10))
    assert out.shape == (1, 3, 12, 20)


# --- precision and device -----------------------------------------------------------------------------------------
def test_bf16_autocast_on_the_cpu_is_close_to_fp32_but_not_equal():
    x = torch.rand(1, 3, 24, 24)
    fp32 = Restorer(_toy(), device="cpu").restore_tensor(x).image
    bf16 = Restorer(_toy(), device="cpu", precision="bf16").restore_tensor(x).image
    assert bf16.dtype == torch.float32
    difference = (bf16 - fp32).abs().max()
    assert 0 < difference < 0.05


def test_unknown_precision_and_device_are_refused():
    with pytest.raises(ConfigError, match="precision"):
        Restorer(_toy(), precision="fp8", device="cpu")
    with pytest.raises(ConfigError, match="device"):
        Restorer(_toy(), device="tpu")


# --- routing ------------------------------------------------------------------------------------------------------
def _selected(passes):
    return [int(p["prompt"]["indices"][0, 0]) for p in passes]


def test_global_routing_gives_every_tile_the_same_selection():
    x = half_dark_image()
    global_run = Restorer(_toy(ToyRouted), tile=16, tile_overlap=4, routing="global", device="cpu").restore_tensor(x)
    per_tile = Restorer(_toy(ToyRouted), tile=16, tile_overlap=4, routing="tile", device="cpu").restore_tensor(x)
    assert global_run.tiles == per_tile.tiles == len(global_run.passes) > 4
    assert set(_selected(global_run.passes)) == {0}  # the whole image is darker than 0.5 on average
    assert set(_selected(per_tile.passes)) == {0, 1}  # dark tiles pick 0, bright ones 1
    assert int(global_run.routing["prompt"][0].argmax()) == 0


def test_global_routing_is_the_default_for_sparse_prompts_and_matches_the_whole_image():
    x = half_dark_image()
    model = _toy(ToyRouted)
    restorer = Restorer(model, tile=16, tile_overlap=8, device="cpu")
    assert restorer.routing_mode == "global"
    with torch.no_grad():
        whole = model(x)
    # small receptive field + the whole image's routing on every tile = the whole-image output
    torch.testing.assert_close(restorer.restore_tensor(x).image, whole, atol=1e-5, rtol=0)
    per_tile = Restorer(model, tile=16, tile_overlap=8, routing="tile", device="cpu").restore_tensor(x).image
    assert (per_tile - whole).abs().max() > 1e-3


def test_global_routing_looks_at_a_downscaled_image():
    seen = []
    model = _toy(ToyRouted)
    original = model.forward
    model.forward = lambda x, **kw: seen.append(tuple(x.shape[-2:])) or original(x, **kw)
    routing = global_routing(model, torch.rand(1, 3, 1200, 40), max_side=512)
    assert seen == [(512, 17)] and routing["prompt"].shape == (1, 2)


def test_a_scale_2_prompted_model_restores_in_tiles():
    x = half_dark_image(24, 40)
    result = Restorer(_toy(ToyRouted, scale=2), tile=16, tile_overlap=8, device="cpu").restore_tensor(x)
    assert result.image.shape == (1, 3, 48, 80) and result.tiles > 1


# --- what was detected --------------------------------------------------------------------------------------------
CALIBRATION = {
    "prompt3": {"derain": [0.9, 0.1, 0.0], "dehaze": [0.1, 0.8, 0.1], "denoise": [0.0, 0.2, 0.8]},
    "prompt2": {"derain": [0.7, 0.3, 0.0], "dehaze": [0.0, 0.5, 0.5], "denoise": [0.5, 0.0, 0.5]},
}


def test_naive_bayes_over_blocks_with_a_floor():
    ranking = dict(degradation_posterior({"prompt3": 0, "prompt2": 0}, CALIBRATION, floor=0.01))
    # floored and renormalised: derain 0.9/1.01 * 0.7/1.01, dehaze 0.1 * 0.01/1.01, denoise 0.01/1.01 * 0.5/1.01
    like = {"derain": 0.9 * 0.7 / 1.01 ** 2, "dehaze": 0.1 * 0.01 / 1.01, "denoise": 0.01 * 0.5 / 1.01 ** 2}
    total = sum(like.values())
    for task, value in like.items():
        assert ranking[task] == pytest.approx(value / total, rel=1e-9)
    assert max(ranking, key=ranking.get) == "derain"
    # one block pointing at "dehaze" and one agreeing with both dehaze and denoise
    assert degradation_posterior({"prompt3": 1, "prompt2": 2}, CALIBRATION)[0][0] == "dehaze"
    # a block the calibration does not know does not vote; no known block at all: nothing to say
    assert degradation_posterior({"prompt3": 2, "other": 0}, CALIBRATION)[0][0] == "denoise"
    assert degradation_posterior({"other": 0}, CALIBRATION) == []


def test_selected_components_are_the_arg_max():
    assert selected_components({"a": torch.tensor([[0.1, 0.7, 0.2]]), "b": torch.tensor([0.6, 0.4])}) == {"a": 1,
                                                                                                           "b": 0}


def test_a_calibration_must_fit_the_model():
    model = _toy(ToyRouted)
    assert check_calibration({"prompt": {"dark": [1, 0], "bright": [0.1, 0.9]}}, model)["prompt"]["dark"] == [1, 0]
    with pytest.raises(CheckpointError, match="does not have"):
        check_calibration({"prompt9": {"rain": [1, 0]}}, model)
    with pytest.raises(CheckpointError, match="expected 2"):
        check_calibration({"prompt": {"rain": [1, 0, 0]}}, model)


def test_restorer_detects_the_degradation_from_the_routing():
    model = _toy(ToyRouted)
    model.calibration = {"prompt": {"dark": [0.95, 0.05], "bright": [0.1, 0.9]}}
    restorer = Restorer(model, device="cpu")
    bright = restorer.restore_tensor(torch.full((1, 3, 16, 16), 0.8))
    dark = restorer.restore_tensor(torch.full((1, 3, 16, 16), 0.2))
    assert restorer.detect(bright.routing)[0] == ("bright", pytest.approx(0.9 / (0.9 + 0.05)))
    assert restorer.detect(dark.routing)[0][0] == "dark"


# --- the Restorer API: the same kind out as in --------------------------------------------------------------------
def test_restore_returns_arrays_in_their_own_layout():
    restorer = Restorer(_toy(), device="cpu")
    rgb8 = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out = restorer.restore(rgb8)
    assert out.dtype == np.uint8 and out.shape == (9, 11, 3)
    grey16 = np.random.default_rng(1).integers(0, 65536, (9, 11), dtype=np.uint16)
    out = restorer.restore(grey16)
    assert out.dtype == np.uint16 and out.shape == (9, 11)
    rgba = np.random.default_rng(2).random((9, 11, 4)).astype(np.float32)
    out = restorer.restore(rgba)
    assert out.dtype == np.float32 and out.shape == (9, 11, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])  # alpha untouched


def test_restore_returns_tensors_of_the_same_shape():
    restorer = Restorer(_toy(scale=2), device="cpu")
    assert restorer.restore(torch.rand(3, 5, 7)).shape == (3, 10, 14)
    grey = restorer.restore(torch.rand(2, 1, 5, 7))
    assert grey.shape == (2, 1, 10, 14) and grey.dtype == torch.float32
    with pytest.raises(InputSizeError):
        restorer.restore(torch.rand(2, 5, 7))
    with pytest.raises(ConfigError, match="out="):
        restorer.restore("photo.png")


def test_restorer_reads_a_model_file(tmp_path, tiny_kwargs):
    from cplir.models import build_model, save_model

    torch.manual_seed(0)
    model = build_model("cplir", **tiny_kwargs).eval()
    path = save_model(model, tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 20, 13)
    restored = Restorer(path, device="cpu").restore_tensor(x)
    with torch.no_grad():
        torch.testing.assert_close(restored.image, run_padded(model, x), atol=1e-6, rtol=0)
    assert set(restored.routing) == {"prompt1", "prompt2", "prompt3"}


# --- ONNX ---------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_onnx_export_matches_pytorch_at_several_sizes(tmp_path, tiny_kwargs):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'cplir[test]')")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install 'cplir[onnx]')")
    import onnx

    from cplir.models import build_model
    from cplir.models.onnx_export import export_onnx

    torch.manual_seed(0)
    model = build_model("cplir", **tiny_kwargs).eval()
    path = export_onnx(model, tmp_path / "m.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["size_multiple"] == "8" and '"cplir"' in props["cplir_spec"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 32, 48), (2, 3, 16, 72), (1, 3, 8, 8)]:
        x = torch.rand(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"input": x.numpy()})[0]
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4, shape
    with pytest.raises(CheckpointError, match="already exists"):
        export_onnx(model, path)
