"""Nothing lost: outputs are checked before work starts and never replace what exists without --overwrite."""

import json

import numpy as np
import pytest
from PIL import Image

from cplir.cli import main
from cplir.errors import OutputError
from cplir.outputs import (check_free_space, collision_free_names, prepare_output_dir, prepare_output_file,
                           refuse_existing)
from trainer_fixtures import trained_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("outputs"))


def test_collision_free_names_keep_folders_and_never_collide():
    keys = ["a/x.png", "b/x.png", "y.png", "y.jpg", "z.tif", "/abs/w.png", "../up.png", "y.png.png"]
    assert collision_free_names(keys) == {
        "a/x.png": "a/x.png", "b/x.png": "b/x.png", "z.tif": "z.png",  # folders kept, extension swapped
        "y.png": "y.png.png", "y.jpg": "y.jpg.png",  # would share y.png: each keeps its own extension
        "y.png.png": "y.png~1.png",  # a real file of that name: numbered instead
        "/abs/w.png": "abs/w.png", "../up.png": "__/up.png"}  # never outside the output folder


def test_prepare_output_dir_refuses_a_file_on_the_path(tmp_path):
    (tmp_path / "afile").write_text("keep")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        prepare_output_dir(tmp_path / "afile" / "sub")
    with pytest.raises(OutputError, match="cannot write"):
        prepare_output_dir("/proc/cplir-test-folder")
    assert prepare_output_dir(tmp_path / "new" / "deep").is_dir()


def test_prepare_output_file_refuses_an_existing_file_unless_overwrite(tmp_path):
    path = tmp_path / "out.png"
    path.write_text("earlier")
    with pytest.raises(OutputError, match="already exists; choose another name or pass --overwrite"):
        prepare_output_file(path)
    assert prepare_output_file(path, overwrite=True) == path and path.read_text() == "earlier"
    with pytest.raises(OutputError, match="is a folder"):
        prepare_output_file(tmp_path)


def test_refuse_existing_names_what_is_there(tmp_path):
    (tmp_path / "images").mkdir()
    refuse_existing(tmp_path, ["results.json", "images"])  # an empty folder holds nothing to lose
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(OutputError, match="results.json, images"):
        refuse_existing(tmp_path, ["results.json", "results.csv", "images"])
    refuse_existing(tmp_path, ["results.json", "images"], overwrite=True)


def test_free_space_below_the_estimate_is_refused(tmp_path):
    with pytest.raises(OutputError, match="MiB free but a checkpoint needs about"):
        check_free_space(tmp_path, 2**62, "a checkpoint")
    check_free_space(tmp_path, 1, "a checkpoint")


def test_export_never_replaces_a_file_unless_overwrite(run, tmp_path, capsys):
    _, ckpt = run
    out = tmp_path / "w.safetensors"
    out.write_text("an earlier export")
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "an earlier export"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--overwrite"]) == 0
    assert out.stat().st_size > 1000


def test_export_refuses_its_own_checkpoint_even_with_overwrite(run, capsys):
    _, ckpt = run
    before = ckpt.read_bytes()
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(ckpt), "--overwrite"]) == 2
    assert "is the checkpoint being exported" in capsys.readouterr().err and ckpt.read_bytes() == before


def test_export_into_a_file_path_fails_before_reading(run, tmp_path, capsys):
    _, ckpt = run
    (tmp_path / "afile").write_text("x")
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "afile" / "w.pth")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1


def test_second_cplir_test_keeps_the_first_results(run, tmp_path, capsys):
    cfg, ckpt = run
    out = tmp_path / "eval"
    argv = ["test", "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    first = (out / "results.json").read_text()
    (out / "results.json").write_text(first.replace('"protocol"', '"protocol_marker"'))  # a mark to find
    assert main(argv) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert "protocol_marker" in (out / "results.json").read_text()
    assert main(argv + ["--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["protocol"] == cfg.eval.protocol


def test_saved_images_are_refused_when_the_folder_holds_images(run, tmp_path, capsys):
    _, ckpt = run
    out = tmp_path / "eval"
    (out / "images" / "denoise").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(out / "images" / "denoise" / "img00.png")
    argv = ["test", "--checkpoint", str(ckpt), "--out", str(out), "--device", "cpu", "--save-images"]
    assert main(argv) == 2
    assert "images" in capsys.readouterr().err
    assert np.asarray(Image.open(out / "images" / "denoise" / "img00.png")).shape == (4, 4, 3)


def test_save_images_with_colliding_stems_writes_every_image(run, tmp_path):
    cfg, ckpt = run
    data = tmp_path / "data"
    for i, rel in enumerate(("a/x.png", "b/x.png", "y.png", "y.bmp")):
        for folder in ("input", "target"):
            (data / folder / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(data / folder / rel)
    out = tmp_path / "eval"
    assert main(["test", "--checkpoint", str(ckpt), "--out", str(out), "--save-images", "--device", "cpu",
                 "--set", f"data.test.0.root={data}"]) == 0
    images = out / "images" / "paired_folder" / "denoise"
    saved = sorted(p.relative_to(images).as_posix() for p in (out / "images").rglob("*.png"))
    assert saved == ["input/a/x.png", "input/b/x.png", "input/y.bmp.png", "input/y.png.png"]


def test_preview_never_replaces_a_file_unless_overwrite(run, tmp_path, capsys):
    cfg, _ = run
    out = tmp_path / "preview.png"
    out.write_bytes(b"earlier")
    assert main(["data", "preview", str(cfg.data.train.root), "--out", str(out), "--per-task", "1"]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"earlier"
    assert main(["data", "preview", str(cfg.data.train.root), "--out", str(out), "--per-task", "1",
                 "--overwrite"]) == 0
    assert Image.open(out).size[0] > 100
