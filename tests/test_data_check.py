"""`cplir data check` / `cplir data preview` on fabricated trees: counts, problems, exit codes, the preview grid."""

import re

import numpy as np
import pytest
import yaml
from PIL import Image

from cplir.cli import main
from cplir.data_check import check_dataset
from cplir.errors import DataError
from test_benchmarks import build, cdd11_files, promptir_files, write_image

# image_grid's layout: 110 px of row titles, 16 px of column titles, cells of 160 px plus a 4 px gap.
LABEL_W, LABEL_H, CELL = 110, 16, 164
PROMPTIR_TRAIN = {"denoise_15": 4, "denoise_25": 4, "denoise_50": 4, "derain": 3, "dehaze": 3, "total": 18}


def printed_counts(out: str):
    """{section header: {task: count}} of the sections `cplir data check` prints."""
    counts = {}
    for lines in (block.splitlines() for block in out.split("\n\n") if block.strip()):
        matches = [re.fullmatch(r"  (\S+) +(\d+)", line) for line in lines[1:]]
        if any(matches):
            counts[lines[0]] = {m[1]: int(m[2]) for m in matches if m}
    return counts


def check(capsys, *argv):
    """(exit status, stdout, stderr) of `cplir data check ARGV`."""
    status = main(["data", "check", *map(str, argv)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def promptir_root(tmp_path):
    return build(tmp_path / "data", promptir_files())


def test_a_good_tree_prints_counts_per_task_and_split_and_exits_0(promptir_root, capsys):
    (promptir_root / "Train/Denoise/notes.txt").write_text("not an image")
    status, out, _ = check(capsys, promptir_root)
    assert status == 0
    counts = printed_counts(out)
    assert counts[f"promptir_three_task  split train  root {promptir_root}"] == PROMPTIR_TRAIN
    assert counts[f"promptir_three_task  split test  root {promptir_root}"]["total"] == 10
    assert "stray files, ignored (1):" in out and "notes.txt" in out
    assert out.rstrip().endswith("data check: OK (2 source(s) checked, 0 with problems)")
    status, out, _ = check(capsys, promptir_root, "--split", "test")
    assert status == 0 and "split train" not in out


@pytest.mark.parametrize("damage, expected", [
    ("missing", r"1 sample\(s\) lack a file:\n +\[derain\] .*gt/norain-2\.png \(needed by .*rainy/rain-2\.png\)"),
    ("unreadable", r"unreadable or unusable files \(1\):\n +.*gt/norain-1\.png: cannot read image"),
    ("empty", r"task 'dehaze': no image in .*Train/Dehaze/synthetic"),
])
def test_missing_pairs_unreadable_files_and_empty_tasks_are_listed_and_exit_1(promptir_root, capsys, damage,
                                                                               expected):
    if damage == "missing":
        (promptir_root / "Train/Derain/gt/norain-2.png").unlink()
    elif damage == "unreadable":
        (promptir_root / "Train/Derain/gt/norain-1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    else:
        for path in (promptir_root / "Train/Dehaze/synthetic").rglob("*.jpg"):
            path.unlink()
    status, out, _ = check(capsys, promptir_root)
    assert status == 1
    assert re.search(expected, out), out
    assert f"promptir_three_task  split train  root {promptir_root}\n" in out
    assert "NOT USABLE:" in out and out.rstrip().endswith("(2 source(s) checked, 1 with problems)")


def test_a_path_that_does_not_exist_is_a_user_error(tmp_path, capsys):
    status, out, err = check(capsys, tmp_path / "nowhere")
    assert status == 2 and out == ""
    assert re.fullmatch(r"cplir data: error: .*nowhere does not exist; pass a config file .* or the root folder "
                        r"of a data set\n", err)


def test_a_folder_without_known_layout_says_what_each_layout_missed(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("no images here")
    status, out, _ = check(capsys, tmp_path)
    assert status == 1
    assert f"no known layout matches {tmp_path}; tried:" in out
    assert re.search(r"  cdd11 \(train split\): folder .*clear is missing", out)
    assert re.search(r"  paired_folder: folder .*input is missing", out)  # the same miss in both splits: once
    assert re.search(r"  promptir_three_task \(train split\): folder .*Train/Denoise is missing", out)
    assert "  mioir_seven_task: no image found" in out and out.rstrip().endswith("NOT USABLE (no data found)")


def test_a_folder_of_clean_images_falls_back_to_the_seven_task_synthesis(tmp_path, capsys):
    for n in range(3):
        write_image(tmp_path / "clean" / f"{n}.png", 40 * n)
    status, out, _ = check(capsys, tmp_path)
    assert status == 0
    assert printed_counts(out)[f"mioir_seven_task  split any  root {tmp_path}"]["total"] == 21
    assert "read as a folder of clean images (mioir_seven_task)" in out


def test_a_config_target_checks_its_train_and_test_sources(tmp_path, capsys):
    root = build(tmp_path / "cdd", cdd11_files("train"))
    (root / "CDD-11_train/rain/2.png").rename(root / "CDD-11_train/rain/9.png")  # no clear/9.png
    source = {"benchmark": "cdd11", "root": str(root), "options": {"classes": ["rain", "haze"]}}
    config = tmp_path / "cdd.yaml"
    small = {"crop_size": 16, "batch_size": 2}  # what training on these 16x16 images would use
    config.write_text(yaml.safe_dump({"data": {"train": {**source, "split": "train"},
                                               "test": [{**source, "split": "test"}], **small}}))
    status, out, _ = check(capsys, config)
    assert status == 1
    assert re.search(r"\[rain\] .*clear/9\.png \(needed by .*rain/9\.png\)", out)
    assert re.search(r"cdd11  split test .*\n  NOT USABLE:\n  - folder .*clear is missing", out)

    source["options"]["allow_missing"] = True  # as in training, a source may allow missing pairs
    config.write_text(yaml.safe_dump({"data": {"train": {**source, "split": "train"}, **small}}))
    status, out, _ = check(capsys, config, "--split", "train")
    assert status == 0 and "samples skipped for a missing file (allow_missing) (1):" in out
    assert list(printed_counts(out).values()) == [{"rain": 2, "haze": 2, "total": 4}]
    assert check_dataset(config, "train").ok
    with pytest.raises(DataError, match="has no data source of the test split"):
        check_dataset(config, "test")
    # --set points a config's placeholder root at the real data
    status, out, _ = check(capsys, config, "--split", "train", "--set", f"data.train.root={tmp_path / 'elsewhere'}")
    assert status == 1 and "elsewhere" in out


def test_preview_writes_a_grid_of_degraded_and_clean_samples_per_task(promptir_root, tmp_path, capsys):
    out = tmp_path / "preview.png"
    assert main(["data", "preview", str(promptir_root), "--out", str(out), "--per-task", "2"]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    grid = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert grid.shape == (LABEL_H + 5 * CELL, LABEL_W + 2 * 2 * CELL, 3)  # 5 tasks x 2 (degraded, clean) pairs
    # Row 0 is denoise_15 on flat grey images: its degraded tile is noisy, its clean tile is flat.
    degraded = grid[LABEL_H:LABEL_H + 16, LABEL_W:LABEL_W + 16]
    clean = grid[LABEL_H:LABEL_H + 16, LABEL_W + CELL:LABEL_W + CELL + 16]
    assert clean.std() == 0 and degraded.std() > 5
    # The test split has 2 images per task: 3 asked for, 2 shown (the first preview is replaced when asked to).
    assert main(["data", "preview", str(promptir_root), "--out", str(out), "--split", "test", "--overwrite"]) == 0
    assert Image.open(out).size == (LABEL_W + 2 * 2 * CELL, LABEL_H + 5 * CELL)


# --- data check agrees with train and test --------------------------------------------------------------------------
def _tiny_config(tmp_path, root, **sections):
    from cplir.config import dump_config
    from trainer_fixtures import tiny_config

    path = tmp_path / "tiny.yaml"
    dump_config(tiny_config(root, tmp_path / "runs", **sections), path)
    return path


def test_training_images_smaller_than_the_crop_fail_the_check(tmp_path, capsys):
    from trainer_fixtures import make_paired_tree

    config = _tiny_config(tmp_path, make_paired_tree(tmp_path / "d", n=4, size=12))
    status, out, _ = check(capsys, config, "--split", "train")
    assert status == 1
    assert "12x12 is smaller than the training crop 16x16 (data.crop_size)" in out
    assert main(["train", "--config", str(config), "--device", "cpu", "--no-progress"]) == 2  # train agrees


def test_fewer_samples_than_a_batch_fail_the_check(tmp_path, capsys):
    from trainer_fixtures import make_paired_tree

    config = _tiny_config(tmp_path, make_paired_tree(tmp_path / "d", n=3), data__batch_size=4)
    status, out, _ = check(capsys, config, "--split", "train")
    assert status == 1 and "gives 3 sample(s) per epoch, fewer than one batch of 4" in out
    assert check(capsys, config, "--split", "train", "--set", "data.repeats={denoise: 2}")[0] == 0


def test_test_images_too_small_for_the_protocol_fail_the_check(tmp_path, capsys):
    from trainer_fixtures import make_paired_tree

    config = _tiny_config(tmp_path, make_paired_tree(tmp_path / "d", n=2, size=12), eval__protocol="promptir",
                          data__crop_size=8)
    status, out, _ = check(capsys, config, "--split", "test")
    assert status == 1 and "is smaller than the 16x16 pixels the promptir protocol can score" in out


def test_a_symlink_loop_is_named_not_followed(tmp_path, capsys):
    from trainer_fixtures import make_paired_tree

    root = make_paired_tree(tmp_path / "d", n=1)
    for folder in ("input", "target"):
        (root / folder / "loop").symlink_to(root / folder, target_is_directory=True)
    status, out, _ = check(capsys, root)
    assert status == 0
    assert re.search(r"paired_folder .*\n  paired +1\n", out)  # one image is one pair, not 41
    assert "symlink loops, not followed (2):" in out and f"{root / 'input' / 'loop'} -> {root / 'input'}" in out
