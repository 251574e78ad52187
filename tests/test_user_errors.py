"""Nothing cryptic: every mistake a user can make ends in one line naming it, before work starts where possible."""

import contextlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cplir.cli import main
from cplir.config import DataSource, load_config, name_test_sets
from cplir.data.image_io import read_image
from cplir.engine import evaluation
from cplir.engine.distributed import DistInfo
from cplir.engine.trainer import Trainer, TrainingDiverged
from cplir.errors import CheckpointError, ConfigError, ImageReadError, InputSizeError
from cplir.models import build_model
from cplir.models.weights import load_checkpoint_file
from trainer_fixtures import TINY_MODEL, make_paired_tree, tiny_config, trained_run

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("errors"))


def one_line_error(capsys, argv) -> str:
    """Run the command line; it must fail with status 2 and one line on stderr, which is returned."""
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"cplir {argv[0]}"), err
    return err[0]


def write_config(path: Path, cfg) -> Path:
    from cplir.config import dump_config

    dump_config(cfg, path)
    return path


# --- test sets keep their identity ------------------------------------------------------------------------------
def test_test_sets_of_one_benchmark_and_root_get_their_own_names():
    source = dict(benchmark="allweather", root="data/allweather", split="test")
    sets = [DataSource(**source, options={"list_file": f"test/{n}.txt"}) for n in ("snow_s", "rain", "drop_a")]
    assert name_test_sets(sets) == ["allweather-snow_s", "allweather-rain", "allweather-drop_a"]
    assert name_test_sets(sets[:1]) == ["allweather"]
    roots = [DataSource(benchmark="paired_folder", root=r, split="test") for r in ("/d/rain100l", "/d/rain100h")]
    assert name_test_sets(roots) == ["paired_folder-rain100l", "paired_folder-rain100h"]
    assert name_test_sets([DataSource(name="mine", **source), sets[0]]) == ["mine", "allweather"]


@pytest.mark.parametrize("names, words", [((None, None), "are the same test set"),
                                          (("x", "x"), "are both named 'x'"),
                                          (("a/b", "c"), "must be a plain name")])
def test_duplicate_or_unsafe_test_sets_are_refused(names, words):
    sets = [DataSource(benchmark="paired_folder", root="/d" if names[0] is None else f"/d{i}", split="test",
                       name=n or "") for i, n in enumerate(names)]
    with pytest.raises(ConfigError, match=words):
        name_test_sets(sets)


@pytest.mark.parametrize("config", ["promptir-allweather.yaml", "cpl-allweather.yaml"])
def test_the_all_weather_configs_name_their_four_sets(config):
    names = name_test_sets(load_config(CONFIGS / config).data.test)
    assert names == ["snow100k_s", "snow100k_l", "outdoor_rain", "raindrop_a"]


def test_two_sets_of_one_folder_are_both_scored(run, tmp_path, capsys):
    cfg, ckpt = run
    root = cfg.data.train.root
    tests = f"data.test=[{{benchmark: paired_folder, root: {root}, split: test, options: {{task: a}}}}, " \
            f"{{benchmark: paired_folder, root: {root}, split: test, options: {{task: b}}, name: second}}]"
    assert main(["test", "--checkpoint", str(ckpt), "--set", tests, "--out", str(tmp_path), "--device", "cpu"]) == 0
    tasks = json.loads((tmp_path / "results.json").read_text())["tasks"]
    assert sorted(tasks) == ["paired_folder/a", "second/b"] and all(t["count"] == 8 for t in tasks.values())


# --- one line before work starts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arg", ["dim=15", "num_blocks=[1,1,1]", "dim=wide", "heads=[0,1,1,1]",
                                 "ffn_expansion_factor=-1", "num_refinement_blocks=-1", "prompt_dims=[1,2]",
                                 "bias=3"])
def test_bad_model_arguments_are_one_line(arg, capsys, tmp_path):
    one_line_error(capsys, ["models", "cplir", "--count", "--arg", arg])
    cfg = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, tmp_path))
    line = one_line_error(capsys, ["train", "--config", str(cfg), "--set", f"model.args.{arg}"])
    assert "model 'cplir'" in line and "Traceback" not in line


@pytest.mark.parametrize("value", ["0", "-8"])
def test_pad_multiple_must_be_positive(value, tmp_path):
    with pytest.raises(ConfigError, match="eval.pad_multiple must be at least 1"):
        tiny_config(tmp_path, tmp_path, eval__pad_multiple=int(value))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
def test_device_cuda_without_cuda_is_one_line(run, tmp_path, capsys):
    cfg, ckpt = run
    line = one_line_error(capsys, ["test", "--checkpoint", str(ckpt), "--device", "cuda"])
    assert "--device cuda needs a GPU" in line and "--device cpu" in line
    line = one_line_error(capsys, ["analyze", "--model", str(ckpt), "--out", str(tmp_path), "--device", "cuda"])
    assert "--device cpu" in line


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "is not UTF-8 text" in one_line_error(capsys, ["train", "--config", str(path)])


def test_invalid_yaml_is_one_line_with_its_place(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("train: [1, 2\n")
    assert "at line 2, column 1" in one_line_error(capsys, ["train", "--config", str(path)])


def test_output_paths_are_checked_before_training(tmp_path, capsys):
    (tmp_path / "afile").write_text("keep")
    cfg = write_config(tmp_path / "c.yaml", tiny_config(make_paired_tree(tmp_path / "d"), tmp_path / "afile"))
    assert "is a file, not a folder" in one_line_error(capsys, ["train", "--config", str(cfg)])
    line = one_line_error(capsys, ["train", "--config", str(cfg), "--set", "output_dir=/proc/cplir-runs"])
    assert "cannot write the run folder" in line
    assert (tmp_path / "afile").read_text() == "keep"


def test_images_smaller_than_the_protocol_fail_before_any_is_restored(run, tmp_path, capsys):
    cfg, ckpt = run
    small = make_paired_tree(tmp_path / "small", n=2, size=8)
    line = one_line_error(capsys, ["test", "--checkpoint", str(ckpt), "--out", str(tmp_path / "eval"),
                                   "--set", f"data.test.0.root={small}", "--set", "eval.protocol=promptir"])
    assert "(8x8)" in line and "smaller than the 16x16 pixels the promptir protocol can score" in line
    assert not (tmp_path / "eval" / "results.json").exists()


def _damage(path: Path, change) -> None:
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)


@pytest.mark.parametrize("change, words", [
    (lambda s: s.__setitem__("rng", "broken"), "'rng' entry is a str"),
    (lambda s: s.__setitem__("rng", {"torch": torch.zeros(3)}), "'rng' entry holds no CPU generator state"),
    (lambda s: s.__setitem__("iteration", "two"), "'iteration' entry is a str, not a whole number"),
    (lambda s: s.__setitem__("iteration", -5), "'iteration' entry is negative"),
    (lambda s: s.pop("model"), "'model' entry is missing"),
    (lambda s: s.__setitem__("optimizer", {"state": 3}), "'optimizer' entry does not fit this run"),
    (lambda s: s["model"].pop(next(iter(s["model"]))), "'model' entry: checkpoint does not fit PromptIR; 1 missing"),
], ids=["rng-type", "rng-tensor", "iteration-type", "iteration-negative", "no-model", "optimizer", "model-key"])
def test_damaged_checkpoint_entries_are_one_line(run, tmp_path, capsys, change, words):
    cfg, _ = run
    shutil.copytree(cfg.run_dir, tmp_path / cfg.name)
    _damage(tmp_path / cfg.name / "checkpoints" / "iter_00000003.pth", change)
    line = one_line_error(capsys, ["train", "--config", str(tmp_path / cfg.name / "config.yaml"), "--resume", "auto",
                                   "--device", "cpu", "--no-progress", "--set", f"output_dir={tmp_path}"])
    assert words in line


def test_running_out_of_memory_names_the_image_and_suggests_tiles(monkeypatch):
    def exhausted(model, x, multiple=None, mode="reflect"):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 9000000000 bytes.")

    monkeypatch.setattr(evaluation, "run_padded", exhausted)
    with pytest.raises(InputSizeError, match=r"restoring set/task/a\.png \(40x30\) needs more memory.*--tile"):
        evaluation._restore(None, torch.zeros(1, 3, 30, 40), 8, "reflect", contextlib.nullcontext, "set/task/a.png")


def test_results_are_written_as_each_set_finishes(run, tmp_path, capsys, monkeypatch):
    cfg, ckpt = run
    root = cfg.data.train.root
    tests = f"data.test=[{{benchmark: paired_folder, root: {root}, split: test, name: first}}, " \
            f"{{benchmark: paired_folder, root: {root}, split: test, name: second, options: {{task: b}}}}]"
    calls = []
    real = evaluation.run_padded

    def failing_late(model, x, multiple=None, mode="reflect"):
        calls.append(1)
        if len(calls) > 8:  # the first set has 8 images
            raise InputSizeError("a failure in the second set")
        return real(model, x, multiple, mode)

    monkeypatch.setattr(evaluation, "run_padded", failing_late)
    assert main(["test", "--checkpoint", str(ckpt), "--set", tests, "--out", str(tmp_path), "--device", "cpu"]) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["tasks"]) == ["first/paired"] and results["complete"] is False
    assert results["sets_done"] == ["first"]
    assert len((tmp_path / "per_image.csv").read_text().splitlines()) == 1 + 8


# --- honest messages ---------------------------------------------------------------------------------------------
def _png_bomb() -> bytes:
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b"")


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 4, 3), np.float32))
    return buffer.getvalue()


def _safetensors() -> bytes:
    from safetensors.torch import save
    return save({"w": torch.zeros(3)})


CONTENTS = {"random bytes": (lambda: np.random.default_rng(0).bytes(2048), "unrecognised binary data"),
            "text": (lambda: b"not an image\n" * 10, "a text file"),
            "npy": (_npy, "a NumPy .npy array"),
            "safetensors": (_safetensors, "a safetensors file")}


@pytest.mark.parametrize("kind", list(CONTENTS))
def test_an_unreadable_image_is_named_for_what_it_is(kind, tmp_path):
    make, words = CONTENTS[kind]
    (tmp_path / "x.png").write_bytes(make())
    with pytest.raises(ImageReadError, match=f"it is {words}, not an image format Pillow reads"):
        read_image(tmp_path / "x.png")


def test_a_decompression_bomb_has_its_own_message(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_bomb())
    with pytest.raises(ImageReadError, match="more pixels than Pillow's safety limit.*decompression bombs"):
        read_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("kind", ["random bytes", "text", "npy"])
def test_a_foreign_checkpoint_is_named_for_what_it_is(kind, tmp_path):
    make, words = CONTENTS[kind]
    (tmp_path / "w.pth").write_bytes(make())
    with pytest.raises(CheckpointError, match=f"is {words}, not a PyTorch checkpoint or safetensors file"):
        load_checkpoint_file(tmp_path / "w.pth")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "img.png")
    (tmp_path / "img.pth").write_bytes((tmp_path / "img.png").read_bytes())
    with pytest.raises(CheckpointError, match="is a PNG image, not a PyTorch checkpoint"):
        load_checkpoint_file(tmp_path / "img.pth")


def test_a_safetensors_file_named_pth_is_read_by_its_content(tmp_path):
    (tmp_path / "w.pth").write_bytes(_safetensors())
    assert torch.equal(load_checkpoint_file(tmp_path / "w.pth")["w"], torch.zeros(3))


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_an_empty_config_file_is_an_error(text, tmp_path):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match="is empty"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("override, words", [("train.optim.lr=.inf", "must be a finite number"),
                                             ("train.optim.lr=.nan", "must be a finite number"),
                                             ("train.optim.lr=0", "must be positive"),
                                             ("train.optim.lr=-1e-3", "must be positive"),
                                             ("loss.cpr.alpha=.inf", "must be a finite number")])
def test_numbers_must_be_finite_and_the_learning_rate_positive(override, words, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, tmp_path))
    with pytest.raises(ConfigError, match=words):
        load_config(path, [override])


@pytest.mark.parametrize("name", ["../escaped", "/abs/run", "a/b", "..", ".", ""])
def test_name_cannot_escape_output_dir(name, tmp_path):
    with pytest.raises(ConfigError, match="name must be a plain folder name inside output_dir"):
        tiny_config(tmp_path, tmp_path, name=name)


def test_the_divergence_message_mentions_only_a_checkpoint_that_exists(tmp_path):
    trainer = Trainer(tiny_config(make_paired_tree(tmp_path / "d"), tmp_path / "runs"), DistInfo(), progress=False)
    nan = torch.full((2, 3, 16, 16), float("nan"))
    with pytest.raises(TrainingDiverged, match="no checkpoint was saved yet") as caught:
        trainer.training_step(nan, nan)
    assert "is intact" not in str(caught.value)
    saved = trainer.save()
    with pytest.raises(TrainingDiverged, match=f"the last checkpoint, {saved}, is intact"):
        trainer.training_step(nan, nan)
    trainer.logger.close()


def test_model_arguments_of_another_type_name_the_expected_type():
    with pytest.raises(ConfigError, match="argument num_blocks must be a list of whole numbers, got"):
        build_model("cplir", **dict(TINY_MODEL, num_blocks=[1, 1, "x", 1]))
