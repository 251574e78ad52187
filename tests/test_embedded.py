"""The embedded data set: offline loading, counts, split by scene, determinism, real depth for the motorcycle."""

import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cplir.cli import main
from cplir.data.benchmarks import load_benchmark
from cplir.data.datasets import PairedDataset
from cplir.data.degradations import CDD11_CLASSES, MIOIR_TASKS, degrade, stretch_depth
from cplir.data.embedded import SCENES, disparity_depth
from cplir.data.image_io import read_image, read_image_uint8
from cplir.errors import DataError
from cplir.seeding import numpy_generator
from test_data_check import printed_counts

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TRAIN_VIEWS = 4  # fixed, whatever else is installed
TEST_VIEWS = 2
THREE = ["denoise_15", "denoise_25", "denoise_50", "derain", "dehaze"]
VARIANT_TASKS = {
    ("three_task", "train"): THREE, ("three_task", "test"): THREE,
    ("five_task", "train"): THREE + ["deblur", "enhance"],
    ("five_task", "test"): ["denoise_25", "derain", "dehaze", "deblur", "enhance"],  # AdaIR tests σ=25 only
    ("seven_task", "train"): list(MIOIR_TASKS), ("seven_task", "test"): list(MIOIR_TASKS),
    ("cdd11", "train"): list(CDD11_CLASSES), ("cdd11", "test"): list(CDD11_CLASSES),
}
SCENE_OF = {f"{scene.package}/{name}": scene.name for scene in SCENES for name in scene.files}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cplir-cache")


@pytest.fixture(autouse=True)
def offline(cache, monkeypatch):
    """No network (any socket raises) and a private cache folder."""

    def no_socket(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_socket)
    monkeypatch.setenv("CPLIR_CACHE", str(cache))


def load(split="train", **options):
    return load_benchmark("embedded", "embedded", split, **options)


@pytest.mark.parametrize("variant", ["three_task", "five_task", "seven_task", "cdd11"])
def test_every_variant_loads_offline_with_the_documented_counts(variant):
    for split, views in (("train", TRAIN_VIEWS), ("test", TEST_VIEWS)):
        records = load(split, variant=variant)
        assert list(records) == VARIANT_TASKS[variant, split]
        assert {task: len(items) for task, items in records.items()} == {t: views for t in records}
        assert all(r.synth is not None and r.clean.is_file() for items in records.values() for r in items)
    with pytest.raises(OSError, match="network disabled"):  # the guard is really in place
        socket.socket()


def test_split_is_by_scene_and_keeps_the_motorcycle_views_together():
    train = {r.key for r in load("train")["derain"]}
    test = {r.key for r in load("test")["derain"]}
    assert {SCENE_OF[k] for k in train}.isdisjoint(SCENE_OF[k] for k in test)
    assert {"skimage/motorcycle_left.png", "skimage/motorcycle_right.png"} <= train
    assert {SCENE_OF[k] for k in test} == {"chelsea", "rocket"}


def test_test_images_are_centre_crops_of_the_package_files():
    cropped = load("test", tasks=["derain"])["derain"]
    whole = load("test", tasks=["derain"], max_size=None)["derain"]
    assert [r.key for r in cropped] == [r.key for r in whole] == ["skimage/chelsea.png", "skimage/rocket.jpg"]
    for small, big in zip(cropped, whole):
        assert big.clean.parent.name == "data" and big.clean.parent.parent.name == "skimage"
        clean, original = read_image_uint8(small.clean), read_image_uint8(big.clean)
        top, left = (original.shape[0] - 256) // 2, (original.shape[1] - 256) // 2
        np.testing.assert_array_equal(clean, original[top:top + 256, left:left + 256])


def test_a_stale_cache_file_is_rewritten(cache):
    record = load("test", tasks=["derain"])["derain"][0]
    expected = read_image_uint8(record.clean)
    record.clean.write_bytes(b"stale")
    os.utime(record.clean, (0, 0))  # older than the package file it was made from
    assert load("test", tasks=["derain"])["derain"][0].clean == record.clean
    np.testing.assert_array_equal(read_image_uint8(record.clean), expected)
    assert record.clean.is_relative_to(cache)


def test_records_and_synthesised_tensors_are_identical_across_loads():
    first, second = load("test", variant="seven_task"), load("test", variant="seven_task")
    assert first == second
    for task in ("rain", "haze", "jpeg"):
        a, b = PairedDataset(first[task], seed=3), PairedDataset(second[task], seed=3)
        for i in range(len(a)):
            assert torch.equal(a[i]["lq"], b[i]["lq"]) and not torch.equal(a[i]["lq"], a[i]["gt"])


def test_motorcycle_haze_uses_its_real_depth_and_the_others_pseudo_depth():
    records = {r.key: r for r in load("train", tasks=["dehaze"])["dehaze"]}
    left, right = records["skimage/motorcycle_left.png"], records["skimage/motorcycle_right.png"]
    assert records["skimage/astronaut.png"].depth is None
    depth = read_image(left.depth)[..., 0]
    assert depth.shape == read_image(left.clean).shape[:2]
    with np.load(left.clean.with_name("motorcycle_disp.npz")) as archive:
        disparity = archive["arr_0"]
    finite = np.where(np.isfinite(disparity), disparity, np.nan)
    assert depth.flat[np.nanargmax(finite)] < 0.01 and depth.flat[np.nanargmin(finite)] > 0.99  # near = small
    # The right view's depth is the left one seen from the right camera: (y, x) -> (y, x - d).
    ys, xs = np.nonzero(np.isfinite(disparity))
    shifted = np.round(xs - disparity[ys, xs]).astype(int)
    inside = shifted >= 0
    right_depth = read_image(right.depth)[..., 0]
    assert np.median(np.abs(right_depth[ys[inside], shifted[inside]] - depth[ys[inside], xs[inside]])) < 0.01
    np.testing.assert_allclose(depth, disparity_depth(left.clean.with_name("motorcycle_disp.npz"), 0), atol=1e-4)

    index = list(records).index(left.key)
    hazy = PairedDataset(list(records.values()), seed=0)[index]["lq"]
    clean = read_image_uint8(left.clean)
    with_pseudo_depth = degrade(clean, "haze", numpy_generator(0, left.key, left.task))
    # the loader normalises a depth file over the whole scene before any crop
    with_real_depth = degrade(clean, "haze", numpy_generator(0, left.key, left.task), depth=stretch_depth(depth))
    to_uint8 = (hazy.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(to_uint8, with_real_depth)
    assert np.abs(to_uint8.astype(int) - with_pseudo_depth).mean() > 5


def test_cdd11_haze_classes_carry_the_depth_too():
    records = load("train", variant="cdd11", tasks=["low_haze", "rain"])
    motorcycle = [r for r in records["low_haze"] if "motorcycle" in r.key]
    assert len(motorcycle) == 2 and all(r.depth is not None for r in motorcycle)


def test_the_set_is_fixed_when_scikit_learn_is_installed_and_its_scenes_are_logged(tmp_path, monkeypatch, caplog):
    images = tmp_path / "sklearn" / "datasets" / "images"  # a scikit-learn with its two photographs
    images.mkdir(parents=True)
    (tmp_path / "sklearn" / "__init__.py").write_text("")
    for name in ("china.jpg", "flower.jpg"):
        (images / name).write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    caplog.set_level("INFO", logger="cplir.data.benchmarks.embedded")
    records = load("train")
    assert {r.key for r in records["derain"]} == {"skimage/astronaut.png", "skimage/coffee.png",
                                                  "skimage/motorcycle_left.png", "skimage/motorcycle_right.png"}
    assert ("embedded three_task train: 3 scenes (astronaut, coffee, motorcycle), 4 views, 5 tasks, 20 records"
            in caplog.messages)


def test_missing_scikit_image_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # as if it were not installed
    with pytest.raises(DataError, match=r'pip install "cplir\[data\]"'):
        load()


def test_bad_options_and_roots_raise_clear_errors():
    with pytest.raises(DataError, match="option variant"):
        load(variant="four_task")
    with pytest.raises(DataError, match="option tasks"):
        load(variant="three_task", tasks=["deblur"])
    with pytest.raises(DataError, match="option max_size"):
        load("test", max_size=0)
    assert list(load(variant="five_task", tasks=["enhance", "denoise"])) == ["enhance", "denoise_15", "denoise_25",
                                                                            "denoise_50"]


def test_the_demo_config_passes_data_check(capsys):
    assert main(["data", "check", str(CONFIGS / "embedded-three-task-cpl.yaml")]) == 0
    counts = printed_counts(capsys.readouterr().out)
    assert counts["embedded  split train  root embedded options {'variant': 'three_task'}"] == {
        **{task: TRAIN_VIEWS for task in THREE}, "total": 5 * TRAIN_VIEWS}
    assert counts["embedded  split test  root embedded options {'variant': 'three_task'}"]["dehaze"] == TEST_VIEWS
