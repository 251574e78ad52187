"""Super-resolution data on fabricated trees: LR/HR pairing by name, aligned crops at scales 2/3/4, synthesised
LR inputs, missing pairs, and `cplir data check` on the SR layouts."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cplir.data.benchmarks import load_benchmark, scan_benchmark, verify_images
from cplir.data.datasets import PairedDataset, TrainingMix
from cplir.data.degradations import bicubic_downscale
from cplir.data.records import PairRecord
from cplir.data.scale import downscaled_window, mod_crop
from cplir.errors import DataError
from test_data_check import check, printed_counts


def save(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def block_pair(rng: np.random.Generator, lr_size, scale: int, extra: int = 0):
    """(LR, HR) uint8 with HR = every LR pixel repeated into a scale × scale block, plus ``extra`` random rows and
    columns at the bottom and right (an HR image that is not a multiple of the scale)."""
    lr = rng.integers(0, 256, (*lr_size, 3), dtype=np.uint8)
    hr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
    hr = np.pad(hr, ((0, extra), (0, extra), (0, 0)))
    hr[hr.shape[0] - extra:], hr[:, hr.shape[1] - extra:] = 7, 7
    return lr, hr


def block_mean(image: np.ndarray, scale: int) -> np.ndarray:
    h, w, c = image.shape
    return image.reshape(h // scale, scale, w // scale, scale, c).mean(axis=(1, 3))


def sr_tree(root: Path, names, scale: int, lr_size=(12, 10), extra: int = 0, lr_names="x", hr_dir="HR",
            lr_dir="LR_bicubic/X{s}") -> Path:
    """``root/HR/NAME.png`` and ``root/LR_bicubic/X{s}/NAMEx{s}.png`` (``lr_names="same"``: ``NAME.png``)."""
    rng = np.random.default_rng(len(names) + scale)
    for name in names:
        lr, hr = block_pair(rng, lr_size, scale, extra)
        save(root / hr_dir / f"{name}.png", hr)
        save(root / lr_dir.format(s=scale) / (f"{name}x{scale}.png" if lr_names == "x" else f"{name}.png"), lr)
    return root


# ---------------------------------------------------------------- pairing


@pytest.mark.parametrize("lr_names", ["x", "same"])
def test_sr_folder_pairs_lr_names_with_hr_and_carries_the_scale(tmp_path, lr_names):
    root = sr_tree(tmp_path / "DIV2K", ["0001", "0002", "0003"], 4, lr_names=lr_names)
    records = load_benchmark("sr_folder", root, scale=4)
    assert list(records) == ["sr_x4"]
    pairs = [(r.degraded.relative_to(root).as_posix(), r.clean.name, r.scale) for r in records["sr_x4"]]
    suffix = "x4" if lr_names == "x" else ""
    assert pairs == [(f"LR_bicubic/X4/{n}{suffix}.png", f"{n}.png", 4) for n in ("0001", "0002", "0003")]
    assert [r.key for r in records["sr_x4"]] == [p[0] for p in pairs]


def test_an_hr_image_without_its_lr_file_is_a_missing_pair(tmp_path):
    root = sr_tree(tmp_path / "sr", ["a", "b"], 2)
    (root / "LR_bicubic/X2/bx2.png").unlink()
    records, report = scan_benchmark("sr_folder", root, scale=2)
    assert [r.clean.name for r in records["sr_x2"]] == ["a.png"]
    assert [(m.missing.name, m.referenced_by.name) for m in report.missing_pairs] == [("bx2.*", "b.png")]
    with pytest.raises(DataError, match=r"(?s)1 sample\(s\) lack a file.*bx2\.\*"):
        load_benchmark("sr_folder", root, scale=2)


def test_lr_is_synthesised_when_only_hr_exists_or_when_asked(tmp_path):
    root = sr_tree(tmp_path / "sr", ["a"], 3)
    files = load_benchmark("sr_folder", root, scale=3)["sr_x3"][0]
    synthesised = load_benchmark("sr_folder", root, scale=3, lr="bicubic")["sr_x3"][0]
    assert files.degraded is not None and synthesised.degraded is None
    assert (synthesised.synth, dict(synthesised.params), synthesised.scale) == ("downscale",
                                                                                {"scale": 3, "mode": "matlab"}, 3)
    with pytest.raises(DataError, match=r"LR_bicubic/X2 is missing"):
        load_benchmark("sr_folder", root, scale=2, lr="files")
    auto = load_benchmark("sr_folder", root, scale=2)["sr_x2"][0]  # no X2 folder: synthesised
    assert auto.synth == "downscale" and auto.scale == 2 and auto.key == "HR/a.png"
    with pytest.raises(DataError, match="option scale"):
        load_benchmark("sr_folder", root, scale=1)
    with pytest.raises(DataError, match="option lr"):
        load_benchmark("sr_folder", root, lr="nearest")


def test_div2k_splits_and_the_test_sets_are_one_task_each(tmp_path):
    root = tmp_path / "DIV2K"
    for part, names in (("train", ["0001", "0002"]), ("valid", ["0801"])):
        sr_tree(root, names, 2, hr_dir=f"DIV2K_{part}_HR", lr_dir=f"DIV2K_{part}_LR_bicubic/X{{s}}")
    train, test = (load_benchmark("div2k", root, split, scale=2)["sr_x2"] for split in ("train", "test"))
    assert [r.degraded.name for r in train] == ["0001x2.png", "0002x2.png"]
    assert [(r.degraded.name, r.clean.name) for r in test] == [("0801x2.png", "0801.png")]

    bench = tmp_path / "benchmark"
    for name in ("Set5", "Set14", "B100", "Urban100", "Manga109"):
        sr_tree(bench / name, [f"{name.lower()}_1", f"{name.lower()}_2"], 3)
    records = load_benchmark("sr_test_sets", bench, "test", scale=3)
    assert list(records) == ["Set5", "Set14", "B100", "Urban100", "Manga109"]
    assert all(len(rs) == 2 and all(r.scale == 3 for r in rs) for rs in records.values())
    with pytest.raises(DataError, match=r"Set5 is missing \(the Set5 test set"):
        load_benchmark("sr_test_sets", tmp_path / "DIV2K", "test")
    assert list(load_benchmark("sr_test_sets", bench, "test", sets=["Urban100"])) == ["Urban100"]


# ---------------------------------------------------------------- aligned crops and whole images


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_training_crops_are_aligned_at_the_scale(tmp_path, scale):
    # HR = each LR pixel as a scale x scale block (+ extra rows/columns the pair ignores): the block mean of every
    # HR crop equals its LR crop exactly, whatever the flip or rotation.
    root = sr_tree(tmp_path / "sr", ["a", "b"], scale, lr_size=(13, 17), extra=scale - 1)
    records = load_benchmark("sr_folder", root, scale=scale)
    mix = TrainingMix(records, {}, crop_size=4 * scale, seed=5)
    assert mix.scale == scale
    for index in range(len(mix)):
        for epoch in range(6):
            sample = mix[(epoch, index)]
            lq, gt = (sample[k].permute(1, 2, 0).numpy() for k in ("lq", "gt"))
            assert lq.shape == (4, 4, 3) and gt.shape == (4 * scale, 4 * scale, 3)
            np.testing.assert_allclose(block_mean(gt, scale), lq, atol=1e-6)
    default = TrainingMix(load_benchmark("sr_folder", sr_tree(tmp_path / "big", ["c"], scale, (60, 50)), scale=scale),
                          {})
    assert default.crop_size == 48 * scale and default[0]["lq"].shape[-1] == 48


def test_crops_follow_the_same_draws_as_restoration_crops(tmp_path):
    # At scale 1 nothing changes; at scale s the window is drawn on the LR grid with the same generator calls.
    root = sr_tree(tmp_path / "sr", ["a"], 2, lr_size=(20, 20))
    record = load_benchmark("sr_folder", root, scale=2)["sr_x2"][0]
    plain = PairRecord(task="sr_x2", clean=record.degraded, degraded=record.degraded, key=record.key)
    sr, restoration = TrainingMix({"sr_x2": [record]}, {}, crop_size=8, seed=3), TrainingMix(
        {"sr_x2": [plain]}, {}, crop_size=4, seed=3)
    for epoch in range(4):
        np.testing.assert_array_equal(sr[(epoch, 0)]["lq"].numpy(), restoration[(epoch, 0)]["lq"].numpy())


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_a_synthesised_lr_crop_equals_the_crop_of_the_whole_images_lr(tmp_path, scale):
    rng = np.random.default_rng(scale)
    hr = rng.integers(0, 256, (23 * scale + 1, 19 * scale + 2, 3), dtype=np.uint8)  # not a multiple of the scale
    save(tmp_path / "HR" / "a.png", hr)
    hr = mod_crop(hr, scale)
    whole = bicubic_downscale(hr, scale=scale)
    # Windows at the corners (the margin is clipped to the image) and inside.
    for rows, cols in [(slice(0, 6), slice(0, 6)), (slice(9, 15), slice(5, 11)), (slice(17, 23), slice(13, 19))]:
        crop = downscaled_window(hr, (rows, cols), scale, lambda x: bicubic_downscale(x, scale=scale))
        np.testing.assert_array_equal(crop, whole[rows, cols])
    records = load_benchmark("sr_folder", tmp_path, scale=scale, lr="bicubic")
    mix = TrainingMix(records, {}, crop_size=6 * scale, augment=False, seed=1)
    for epoch in range(5):
        lq, gt = (np.rint(mix[(epoch, 0)][k].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for k in ("lq", "gt"))
        top, left = next((t, u) for t in range(18) for u in range(14)  # where the HR crop was cut
                         if np.array_equal(hr[t * scale:(t + 6) * scale, u * scale:(u + 6) * scale], gt))
        np.testing.assert_array_equal(lq, whole[top:top + 6, left:left + 6])


def test_whole_pairs_cut_the_hr_to_the_lr_times_the_scale(tmp_path):
    root = sr_tree(tmp_path / "sr", ["a"], 3, lr_size=(11, 9), extra=2)
    records = load_benchmark("sr_folder", root, scale=3)
    sample = PairedDataset(records)[0]
    assert sample["lq"].shape == (3, 11, 9) and sample["gt"].shape == (3, 33, 27)
    np.testing.assert_allclose(block_mean(sample["gt"].permute(1, 2, 0).numpy(), 3),
                               sample["lq"].permute(1, 2, 0).numpy(), atol=1e-6)
    cropped = PairedDataset(records, multiple_of=4)[0]  # LR centre-cropped to 8x8, HR to the same window x 3
    assert cropped["lq"].shape == (3, 8, 8) and cropped["gt"].shape == (3, 24, 24)
    np.testing.assert_array_equal(cropped["lq"].numpy(), sample["lq"][:, 1:9, 0:8].numpy())
    np.testing.assert_array_equal(cropped["gt"].numpy(), sample["gt"][:, 3:27, 0:24].numpy())
    synthesised = PairedDataset(load_benchmark("sr_folder", root, scale=3, lr="bicubic"))[0]
    assert synthesised["gt"].shape == (3, 33, 27) and synthesised["lq"].shape == (3, 11, 9)


def test_wrong_sizes_and_mixed_scales_are_clear_errors(tmp_path):
    root = sr_tree(tmp_path / "sr", ["a"], 2, lr_size=(8, 8))
    save(root / "LR_bicubic/X2/ax2.png", np.zeros((7, 8, 3), np.uint8))  # should be 8x8 for a 16x16 HR
    records = load_benchmark("sr_folder", root, scale=2)
    problems = verify_images(records)
    assert len(problems) == 1 and "is not the size of its clean image" in problems[0][1]
    assert "expected 8x8" in problems[0][1]
    with pytest.raises(DataError, match="divided by the scale 2"):
        PairedDataset(records)[0]
    other = sr_tree(tmp_path / "x3", ["b"], 3)
    mixed = {**records, **load_benchmark("sr_folder", other, scale=3)}
    with pytest.raises(DataError, match=r"scales \[2, 3\]"):
        TrainingMix(mixed, {})
    with pytest.raises(DataError, match="not a multiple of the scale 3"):
        TrainingMix(load_benchmark("sr_folder", other, scale=3), {}, crop_size=10)
    with pytest.raises(DataError, match=r"smaller than the training crop 96x96"):
        TrainingMix(load_benchmark("sr_folder", other, scale=3), {}, crop_size=96)[0]


# ---------------------------------------------------------------- single-task layouts


def test_reside_its_and_sots_indoor_pair_hazy_images_with_their_scene(tmp_path):
    root = tmp_path / "RESIDE"
    rng = np.random.default_rng(0)
    for scene in (1, 2):
        save(root / "ITS/clear" / f"{scene}.png", rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        for k in (1, 2):
            save(root / "ITS/hazy" / f"{scene}_{k}_0.{80 + k}.png", np.full((8, 8, 3), 200, np.uint8))
    save(root / "ITS/hazy/3_1_0.85.png", np.full((8, 8, 3), 200, np.uint8))  # scene 3 has no clear image
    for k in (1, 2, 3):
        save(root / "SOTS/indoor/hazy" / f"1400_{k}.png", np.full((8, 8, 3), 150, np.uint8))
    save(root / "SOTS/indoor/gt/1400.png", np.zeros((8, 8, 3), np.uint8))
    records, report = scan_benchmark("reside_indoor", root, "train")
    assert [(r.degraded.name, r.clean.name) for r in records["dehaze"]] == [
        ("1_1_0.81.png", "1.png"), ("1_2_0.82.png", "1.png"), ("2_1_0.81.png", "2.png"), ("2_2_0.82.png", "2.png")]
    assert [m.missing.name for m in report.missing_pairs] == ["3.*"]
    test = load_benchmark("reside_indoor", root, "test")["dehaze"]
    assert [(r.degraded.name, r.clean.name) for r in test] == [(f"1400_{k}.png", "1400.png") for k in (1, 2, 3)]
    direct = load_benchmark("reside_indoor", root / "SOTS/indoor", "test")  # ROOT = the split folder itself
    assert [r.degraded.name for r in direct["dehaze"]] == [r.degraded.name for r in test]
    with pytest.raises(DataError, match=r"no clean folder \(clear, gt, GT\)"):
        (root / "SOTS/indoor/gt").rename(root / "SOTS/indoor/target")
        load_benchmark("reside_indoor", root, "test")


def test_spa_data_reads_spanet_lists_and_folders(tmp_path):
    root = tmp_path / "spa"
    for n in (0, 1):
        save(root / f"real_world/000/000-{n}/000-{n}_0_0.png", np.full((8, 8, 3), 90, np.uint8))
        save(root / f"real_world_gt/000/000-{n}_0_0.png", np.full((8, 8, 3), 80, np.uint8))
    (root / "real_world.txt").write_text("".join(
        f"./real_world/000/000-{n}/000-{n}_0_0.png ./real_world_gt/000/000-{n}_0_0.png\n" for n in (0, 1))
        + "/real_world/000/000-9/000-9_0_0.png /real_world_gt/000/000-9_0_0.png\n")
    records, report = scan_benchmark("spa_data", root, "train")
    assert [(r.key, r.clean.relative_to(root).as_posix()) for r in records["derain"]] == [
        (f"real_world/000/000-{n}/000-{n}_0_0.png", f"real_world_gt/000/000-{n}_0_0.png") for n in (0, 1)]
    assert report.list_files == [root / "real_world.txt"]
    assert [m.missing.name for m in report.missing_pairs] == ["000-9_0_0.png"]
    for n in range(3):  # SPANet's test set: NNN.png <-> NNNgt.png
        save(root / f"real_test_1000/rain/{n:03d}.png", np.full((8, 8, 3), 90, np.uint8))
        save(root / f"real_test_1000/gt/{n:03d}gt.png", np.full((8, 8, 3), 80, np.uint8))
    test = load_benchmark("spa_data", root, "test")["derain"]
    assert [(r.degraded.name, r.clean.name) for r in test] == [(f"{n:03d}.png", f"{n:03d}gt.png") for n in range(3)]
    idt = tmp_path / "sparain"  # IDT's training patches: input/N.png <-> groundtruth/N.png
    for n in (1, 2):
        save(idt / f"input/{n}.png", np.full((8, 8, 3), 90, np.uint8))
        save(idt / f"groundtruth/{n}.png", np.full((8, 8, 3), 80, np.uint8))
    assert len(load_benchmark("spa_data", idt, "train")["derain"]) == 2
    (root / "bad.txt").write_text("only_one_path.png\n")
    with pytest.raises(DataError, match="not 'RAIN_PATH GT_PATH'"):
        load_benchmark("spa_data", root, list_file="bad.txt")


# ---------------------------------------------------------------- data check


def test_data_check_detects_the_sr_and_single_task_layouts(tmp_path, capsys):
    root = sr_tree(tmp_path / "DIV2K", ["0001", "0002"], 4)
    status, out, _ = check(capsys, root)
    assert status == 0
    assert printed_counts(out)[f"sr_folder  split any  root {root}"] == {"sr_x4": 2, "total": 2}
    (root / "LR_bicubic/X4/0002x4.png").unlink()
    status, out, _ = check(capsys, root)
    assert status == 1 and "0002x4.*" in out
    spa = tmp_path / "spa"
    for n in range(2):
        save(spa / f"real_test_1000/rain/{n:03d}.png", np.full((8, 8, 3), 90, np.uint8))
        save(spa / f"real_test_1000/gt/{n:03d}gt.png", np.full((8, 8, 3), 80, np.uint8))
    status, out, _ = check(capsys, spa, "--split", "test")
    assert status == 0 and printed_counts(out)[f"spa_data  split test  root {spa}"] == {"derain": 2, "total": 2}


def test_embedded_sr_variant_gives_scaled_pairs(tmp_path, monkeypatch):
    monkeypatch.setenv("CPLIR_CACHE", str(tmp_path / "cache"))
    records = load_benchmark("embedded", "embedded", "test", variant="sr_x4")
    assert list(records) == ["sr_x4"] and all(r.scale == 4 and r.synth == "downscale" for r in records["sr_x4"])
    sample = PairedDataset(records)[0]
    assert tuple(sample["gt"].shape[1:]) == tuple(4 * n for n in sample["lq"].shape[1:])
    train = load_benchmark("embedded", "embedded", "train", variant="sr_x2")
    assert TrainingMix(train, {}, crop_size=32)[0]["lq"].shape == (3, 16, 16)
    dehaze = load_benchmark("embedded", "embedded", "test", variant="dehaze")
    assert list(dehaze) == ["dehaze"] and dehaze["dehaze"][0].synth == "haze"
