"""Replay the bad-input matrix through the command line and count how each case ends.

Every case builds its inputs in its own folder (damaged images, odd data trees, broken configs, damaged or foreign
checkpoints, awkward output paths), runs ``cplir.cli.main`` in this process and is classified:

* ``ok``: exit status 0 where success is expected;
* ``clear``: a one-line ``cplir <command>: error: ...`` (status 2), or ``data check``'s report (status 1), where an
  error is expected;
* ``multi-line``: an expected error whose message spans several lines;
* ``traceback``: an exception escaped ``main``;
* ``wrong``: success where an error was expected, or the reverse, or a success that did not do what it should
  (e.g. fewer restored images than inputs);
* ``overwrite``: a file that existed before the case (its own inputs, or the shared tree, data and checkpoints)
  changed or disappeared, for a case that was not told to overwrite.

    python bench/bad_inputs.py            # the whole matrix (about a minute of tiny training runs)
    python bench/bad_inputs.py --quick    # one case per group
    python bench/bad_inputs.py -k resume  # cases whose name contains "resume"

It prints one line per case and the counts; the target is 0 tracebacks, 0 wrong outcomes, 0 overwrites.
"""

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import yaml
from PIL import Image

from cplir.cli import main

TINY_MODEL = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "prompt_sizes": [8, 4, 4],
              "heads": [1, 1, 2, 2]}


# ---------------------------------------------------------------------------------------------------------------
# Shared workspace: a paired data tree, a tiny config and a trained checkpoint
# ---------------------------------------------------------------------------------------------------------------
def save_png(path: Path, size=(32, 32), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def paired_tree(root: Path, names=("img0.png", "img1.png", "img2.png", "img3.png"), size=(32, 32)) -> Path:
    for i, name in enumerate(names):
        save_png(root / "input" / name, size, seed=i)
        save_png(root / "target" / name, size, seed=100 + i)
    return root


def config_dict(data_root: Path, out: Path, **top) -> dict:
    source = {"benchmark": "paired_folder", "root": str(data_root), "options": {"task": "denoise"}}
    cfg = {"name": "tiny", "output_dir": str(out), "seed": 1,
           "model": {"name": "cplir", "args": dict(TINY_MODEL)},
           "data": {"train": source, "test": [dict(source, split="test")], "crop_size": 16, "batch_size": 2,
                    "num_workers": 0},
           "train": {"iterations": 2, "log_every": 1, "val_every": 0, "save_every": 2, "ema_decay": 0.9,
                     "optim": {"lr": 1e-3}},
           "eval": {"protocol": "basicsr_rgb"}}
    cfg.update(top)
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@dataclass
class Shared:
    root: Path
    data: Path
    config: Path
    run: Path
    checkpoint: Path


def build_shared(root: Path) -> Shared:
    data = paired_tree(root / "data")
    config = write_config(root / "tiny.yaml", config_dict(data, root / "runs"))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        status = main(["train", "--config", str(config), "--no-progress", "--device", "cpu"])
    if status != 0:
        raise SystemExit("the tiny training run of the shared workspace failed")
    run = root / "runs" / "tiny"
    return Shared(root, data, config, run, run / "checkpoints" / "iter_00000002.pth")


# ---------------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    group: str
    name: str
    setup: Callable[[Shared, Path], List[str]]  # builds the inputs in the case folder, returns the argv
    expect: str = "error"  # "error" or "ok"
    may_modify: bool = False  # the case asks for its own inputs to change (--overwrite, a resume)
    verify: Optional[Callable[[Path, str], str]] = None  # (case folder, stdout) of a success -> what it did wrong


CASES: List[Case] = []


def case(group: str, expect: str = "error", may_modify: bool = False, verify=None):
    def register(setup):
        CASES.append(Case(group, setup.__name__, setup, expect, may_modify, verify))
        return setup
    return register


def cplir_test_argv(sh: Shared, config: Path, *extra) -> List[str]:
    return ["test", "--config", str(config), "--checkpoint", str(sh.checkpoint), "--device", "cpu", *extra]


def cplir_test_on_bad_image(sh: Shared, d: Path, write_bad) -> List[str]:
    """``cplir test`` on a paired tree whose first input image is replaced by ``write_bad(path)``."""
    data = paired_tree(d / "data")
    write_bad(data / "input" / "img0.png")
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return cplir_test_argv(sh, config, "--out", str(d / "eval"))


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


# --- images ----------------------------------------------------------------------------------------------------
@case("images")
def image_random_bytes(sh, d):
    return cplir_test_on_bad_image(sh, d, lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)))


@case("images")
def image_text_file(sh, d):
    return cplir_test_on_bad_image(sh, d, lambda p: p.write_text("this is not an image\n" * 20))


@case("images")
def image_npy_file(sh, d):
    def write(p):
        with p.open("wb") as handle:
            np.save(handle, np.zeros((32, 32, 3), np.float32))
    return cplir_test_on_bad_image(sh, d, write)


@case("images")
def image_empty_file(sh, d):
    return cplir_test_on_bad_image(sh, d, lambda p: p.write_bytes(b""))


@case("images")
def image_truncated_png(sh, d):
    return cplir_test_on_bad_image(sh, d, lambda p: p.write_bytes(p.read_bytes()[:200]))


@case("images")
def image_decompression_bomb(sh, d):
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)  # 30000x30000 RGB, 8 bits
    bomb = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))
    return cplir_test_on_bad_image(sh, d, lambda p: p.write_bytes(bomb))


@case("images", expect="ok")  # not an image: a (empty) sub-folder of the scan; its target stays unpaired
def image_directory_named_png(sh, d):
    def write(p):
        p.unlink()
        p.mkdir()
    return cplir_test_on_bad_image(sh, d, write)


@case("images")
def image_pair_size_mismatch(sh, d):
    return cplir_test_on_bad_image(sh, d, lambda p: save_png(p, (40, 32)))


@case("images")
def image_smaller_than_protocol_window(sh, d):
    data = paired_tree(d / "data", size=(8, 8))
    config = write_config(d / "c.yaml", config_dict(data, d / "runs", eval={"protocol": "promptir"}))
    return cplir_test_argv(sh, config, "--out", str(d / "eval"))


@case("images")
def image_smaller_than_training_crop(sh, d):
    data = paired_tree(d / "data", size=(12, 12))
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu"]


@case("images", expect="ok")
def image_greyscale_and_rgba_inputs(sh, d):
    def write(p):
        Image.fromarray(np.full((32, 32), 128, np.uint8)).save(p)
    return cplir_test_on_bad_image(sh, d, write)


# --- data trees ------------------------------------------------------------------------------------------------
@case("trees")
def tree_missing_root(sh, d):
    config = write_config(d / "c.yaml", config_dict(d / "nowhere", d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu"]


@case("trees")
def tree_root_is_a_file(sh, d):
    (d / "file").write_text("x")
    config = write_config(d / "c.yaml", config_dict(d / "file", d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu"]


@case("trees")
def tree_empty_input_folder(sh, d):
    (d / "data" / "input").mkdir(parents=True)
    (d / "data" / "target").mkdir()
    config = write_config(d / "c.yaml", config_dict(d / "data", d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu"]


@case("trees")
def tree_missing_pair(sh, d):
    data = paired_tree(d / "data")
    (data / "target" / "img1.png").unlink()
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu"]


@case("trees")
def tree_fewer_samples_than_a_batch(sh, d):
    data = paired_tree(d / "data", names=("a.png",))
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu"]


@case("trees")
def tree_fewer_samples_than_a_batch_data_check(sh, d):
    data = paired_tree(d / "data", names=("a.png",))
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return ["data", "check", str(config)]


@case("trees")
def tree_images_smaller_than_crop_data_check(sh, d):
    data = paired_tree(d / "data", size=(12, 12))
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return ["data", "check", str(config)]


@case("trees", expect="ok", verify=lambda d, out: "" if "symlink loops, not followed (2)" in out and re.search(
      r"\n  paired +1\n", out) else "the loops were followed or not named")
def tree_symlink_loop_data_check(sh, d):
    data = paired_tree(d / "data", names=("a.png",))
    for folder in ("input", "target"):
        (data / folder / "loop").symlink_to(data / folder, target_is_directory=True)
    return ["data", "check", str(data)]


@case("trees")
def tree_unknown_benchmark_option(sh, d):
    cfg = config_dict(sh.data, d / "runs")
    cfg["data"]["train"]["options"]["colour"] = "blue"
    return ["train", "--config", str(write_config(d / "c.yaml", cfg)), "--no-progress", "--device", "cpu"]


# --- configs ---------------------------------------------------------------------------------------------------
def train_config_text(d: Path, text: str) -> List[str]:
    path = d / "c.yaml"
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return ["train", "--config", str(path), "--no-progress", "--device", "cpu"]


def train_with(sh: Shared, d: Path, *overrides, config: Path = None) -> List[str]:
    config = config or write_config(d / "c.yaml", config_dict(sh.data, d / "runs"))
    return ["train", "--config", str(config), "--no-progress", "--device", "cpu",
            *[a for o in overrides for a in ("--set", o)]]


@case("configs")
def config_missing_file(sh, d):
    return ["train", "--config", str(d / "absent.yaml")]


@case("configs")
def config_empty_file(sh, d):
    return train_config_text(d, "")


@case("configs")
def config_only_comments(sh, d):
    return train_config_text(d, "# nothing here\n")


@case("configs")
def config_not_utf8(sh, d):
    return train_config_text(d, "name: caf\xe9\n".encode("latin-1"))


@case("configs")
def config_invalid_yaml(sh, d):
    return train_config_text(d, "train: [1, 2\n")


@case("configs")
def config_top_level_list(sh, d):
    return train_config_text(d, "- a\n- b\n")


@case("configs")
def config_python_tag(sh, d):
    return train_config_text(d, "name: !!python/object/apply:os.system ['echo pwned']\n")


@case("configs")
def config_unknown_key(sh, d):
    return train_with(sh, d, "train.iteratons=3")


@case("configs")
def config_missing_base(sh, d):
    return train_config_text(d, "_base_: nowhere.yaml\n")


@case("configs")
def config_base_cycle(sh, d):
    (d / "b.yaml").write_text("_base_: c.yaml\n")
    return train_config_text(d, "_base_: b.yaml\n")


@case("configs")
def config_lr_zero(sh, d):
    return train_with(sh, d, "train.optim.lr=0")


@case("configs")
def config_lr_negative(sh, d):
    return train_with(sh, d, "train.optim.lr=-1e-3")


@case("configs")
def config_lr_nan(sh, d):
    return train_with(sh, d, "train.optim.lr=.nan")


@case("configs")
def config_lr_inf(sh, d):
    return train_with(sh, d, "train.optim.lr=.inf")


@case("configs")
def config_lr_string(sh, d):
    return train_with(sh, d, "train.optim.lr=fast")


@case("configs", expect="ok")
def config_lr_exponent_without_dot(sh, d):
    return train_with(sh, d, "train.optim.lr=3e-3", "train.iterations=1", "train.save_every=0")


@case("configs")
def config_name_escapes_output_dir(sh, d):
    return train_with(sh, d, "name=../escaped")


@case("configs")
def config_name_absolute(sh, d):
    return train_with(sh, d, f"name={d / 'abs'}")


@case("configs")
def config_name_with_subfolder(sh, d):
    return train_with(sh, d, "name=a/b")


@case("configs")
def config_model_dim_not_divisible(sh, d):
    return train_with(sh, d, "model.args.dim=15")


@case("configs")
def config_model_three_num_blocks(sh, d):
    return train_with(sh, d, "model.args.num_blocks=[1,1,1]")


@case("configs")
def config_model_dim_string(sh, d):
    return train_with(sh, d, "model.args.dim=wide")


@case("configs")
def config_model_dim_negative(sh, d):
    return train_with(sh, d, "model.args.dim=-8")


@case("configs")
def config_model_unknown_arg(sh, d):
    return train_with(sh, d, "model.args.depth=3")


@case("configs")
def config_model_unknown_name(sh, d):
    return train_with(sh, d, "model.name=transformer9000")


@case("configs")
def config_pad_multiple_zero(sh, d):
    return train_with(sh, d, "eval.pad_multiple=0")


@case("configs")
def config_pad_multiple_negative(sh, d):
    return train_with(sh, d, "eval.pad_multiple=-8")


@case("configs")
def config_duplicate_test_sets(sh, d):
    cfg = config_dict(sh.data, d / "runs")
    cfg["data"]["test"] = cfg["data"]["test"] * 2
    return train_with(sh, d, config=write_config(d / "c.yaml", cfg))


@case("configs")
def config_duplicate_test_set_names(sh, d):
    cfg = config_dict(sh.data, d / "runs")
    first = dict(cfg["data"]["test"][0], name="same")
    cfg["data"]["test"] = [first, dict(first, options={"task": "other"})]
    return train_with(sh, d, config=write_config(d / "c.yaml", cfg))


@case("configs")
def config_test_set_name_with_a_slash(sh, d):
    cfg = config_dict(sh.data, d / "runs")
    cfg["data"]["test"][0]["name"] = "../sets"
    return train_with(sh, d, config=write_config(d / "c.yaml", cfg))


@case("configs")
def config_device_cuda_without_cuda(sh, d):
    if torch.cuda.is_available():
        return ["train", "--config", str(d / "skip-on-cuda-machines.yaml")]
    return train_with(sh, d)[:-2] + ["--device", "cuda"]


@case("configs")
def config_batch_size_zero(sh, d):
    return train_with(sh, d, "data.batch_size=0")


@case("configs")
def config_crop_not_multiple(sh, d):
    return train_with(sh, d, "data.crop_size=20")


@case("configs")
def config_output_dir_is_a_file(sh, d):
    (d / "afile").write_text("keep me\n")
    return train_with(sh, d, f"output_dir={d / 'afile'}")


@case("configs")
def config_output_dir_unwritable(sh, d):
    return train_with(sh, d, "output_dir=/proc/cplir-runs")


# --- checkpoints -----------------------------------------------------------------------------------------------
def cplir_test_checkpoint(sh: Shared, d: Path, write) -> List[str]:
    path = d / "model.pth"
    write(path)
    return ["test", "--config", str(sh.config), "--checkpoint", str(path), "--device", "cpu",
            "--out", str(d / "eval")]


@case("checkpoints")
def checkpoint_missing(sh, d):
    return ["test", "--config", str(sh.config), "--checkpoint", str(d / "absent.pth"), "--out", str(d / "eval")]


@case("checkpoints")
def checkpoint_is_a_directory(sh, d):
    return cplir_test_checkpoint(sh, d, lambda p: p.mkdir())


@case("checkpoints")
def checkpoint_random_bytes(sh, d):
    return cplir_test_checkpoint(sh, d, lambda p: p.write_bytes(np.random.default_rng(1).bytes(5000)))


@case("checkpoints")
def checkpoint_text_file(sh, d):
    return cplir_test_checkpoint(sh, d, lambda p: p.write_text("weights: none\n"))


@case("checkpoints")
def checkpoint_npy_named_pth(sh, d):
    def write(p):
        with p.open("wb") as handle:
            np.save(handle, np.zeros(10, np.float32))
    return cplir_test_checkpoint(sh, d, write)


@case("checkpoints")
def checkpoint_image_named_pth(sh, d):
    return cplir_test_checkpoint(sh, d, lambda p: p.write_bytes((sh.data / "input" / "img0.png").read_bytes()))


@case("checkpoints")
def checkpoint_truncated(sh, d):
    return cplir_test_checkpoint(sh, d, lambda p: p.write_bytes(sh.checkpoint.read_bytes()[:3000]))


@case("checkpoints")
def checkpoint_pickled_object(sh, d):
    return cplir_test_checkpoint(sh, d, lambda p: torch.save({"model": argparse.Namespace(x=1)}, p))


@case("checkpoints", expect="ok")
def checkpoint_safetensors_named_pth(sh, d):
    from safetensors.torch import save_file

    ema = torch.load(sh.checkpoint, weights_only=True)["ema"]
    return cplir_test_checkpoint(sh, d, lambda p: save_file({k: v.contiguous() for k, v in ema.items()}, str(p)))


@case("checkpoints")
def checkpoint_of_another_model(sh, d):
    cfg = config_dict(sh.data, d / "runs")
    cfg["model"] = {"name": "promptir", "args": dict(TINY_MODEL)}
    return cplir_test_argv(sh, write_config(d / "c.yaml", cfg), "--out", str(d / "eval"))


@case("checkpoints")
def checkpoint_config_with_other_model_args(sh, d):
    cfg = config_dict(sh.data, d / "runs")
    cfg["model"]["args"]["top_k"] = 2
    return cplir_test_argv(sh, write_config(d / "c.yaml", cfg), "--out", str(d / "eval"))


@case("checkpoints", expect="ok", verify=lambda d, out: "" if (
    d / "runs" / "tiny" / "checkpoints" / "iter_00000002-test" / "per_image.csv").is_file() else "no results")
def checkpoint_test_without_config(sh, d):
    return ["test", "--checkpoint", str(copy_run(sh, d) / "checkpoints" / "iter_00000002.pth"), "--device", "cpu"]


def copy_run(sh: Shared, d: Path) -> Path:
    """A copy of the shared run whose config (inside its checkpoint too) writes under ``d``."""
    run = d / "runs" / "tiny"
    shutil.copytree(sh.run, run)
    state = torch.load(run / "checkpoints" / "iter_00000002.pth", weights_only=True)
    state["config"]["output_dir"] = str(d / "runs")
    torch.save(state, run / "checkpoints" / "iter_00000002.pth")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["output_dir"] = str(d / "runs")
    write_config(run / "config.yaml", cfg)
    return run


def resume_with(sh: Shared, d: Path, damage=None, *overrides) -> List[str]:
    run = copy_run(sh, d)
    if damage is not None:
        path = run / "checkpoints" / "iter_00000002.pth"
        state = torch.load(path, weights_only=True)
        damage(state)
        torch.save(state, path)
    return ["train", "--config", str(run / "config.yaml"), "--resume", "auto", "--no-progress", "--device", "cpu",
            *[a for o in overrides for a in ("--set", o)]]


@case("checkpoints")
def checkpoint_damaged_rng(sh, d):
    return resume_with(sh, d, lambda s: s.__setitem__("rng", "broken"), "train.iterations=3")


@case("checkpoints")
def checkpoint_damaged_iteration(sh, d):
    return resume_with(sh, d, lambda s: s.__setitem__("iteration", "two"), "train.iterations=3")


@case("checkpoints")
def checkpoint_negative_iteration(sh, d):
    return resume_with(sh, d, lambda s: s.__setitem__("iteration", -5), "train.iterations=3")


@case("checkpoints")
def checkpoint_without_model_entry(sh, d):
    return resume_with(sh, d, lambda s: s.pop("model"), "train.iterations=3")


@case("checkpoints")
def checkpoint_damaged_optimizer(sh, d):
    return resume_with(sh, d, lambda s: s.__setitem__("optimizer", {"state": 3}), "train.iterations=3")


@case("checkpoints")
def resume_with_changed_seed(sh, d):
    return resume_with(sh, d, None, "seed=7", "train.iterations=3")


@case("checkpoints")
def resume_with_changed_model(sh, d):
    return resume_with(sh, d, None, "model.name=promptir", "train.iterations=3")


@case("checkpoints")
def resume_with_changed_lr(sh, d):
    return resume_with(sh, d, None, "train.optim.lr=0.01", "train.iterations=3")


@case("checkpoints", expect="ok", may_modify=True)
def resume_extending_iterations(sh, d):
    return resume_with(sh, d, None, "train.iterations=3", "train.optim.schedule_iters=2")


@case("checkpoints", expect="ok", may_modify=True, verify=lambda d, out: "" if (
    d / "runs" / "tiny" / "config.until-iter_00000002.yaml").is_file() else "the earlier config was not kept")
def resume_with_allowed_config_change(sh, d):
    return resume_with(sh, d, None, "seed=7", "train.iterations=3") + ["--allow-config-change"]


@case("checkpoints")
def cplir_test_model_file_without_config(sh, d):
    model = d / "model.safetensors"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["export", "--checkpoint", str(sh.checkpoint), "--out", str(model)])
    return ["test", "--checkpoint", str(model), "--device", "cpu"]


@case("checkpoints")
def resume_from_a_model_file(sh, d):
    model = d / "model.pth"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["export", "--checkpoint", str(sh.checkpoint), "--out", str(model)])
    return ["train", "--config", str(sh.config), "--resume", str(model), "--no-progress", "--device", "cpu",
            "--set", f"output_dir={d / 'runs'}"]


@case("checkpoints")
def resume_missing_file(sh, d):
    return ["train", "--config", str(sh.config), "--resume", str(d / "absent.pth"), "--set",
            f"output_dir={d / 'runs'}"]


# --- output paths ----------------------------------------------------------------------------------------------
@case("outputs")
def export_onto_its_checkpoint(sh, d):
    run = copy_run(sh, d)
    ckpt = run / "checkpoints" / "iter_00000002.pth"
    return ["export", "--checkpoint", str(ckpt), "--out", str(ckpt)]


@case("outputs")
def export_onto_its_checkpoint_with_overwrite(sh, d):
    run = copy_run(sh, d)
    ckpt = run / "checkpoints" / "iter_00000002.pth"
    return ["export", "--checkpoint", str(ckpt), "--out", str(ckpt), "--overwrite"]


@case("outputs")
def export_onto_an_existing_file(sh, d):
    (d / "w.safetensors").write_text("an earlier export\n")
    return ["export", "--checkpoint", str(sh.checkpoint), "--out", str(d / "w.safetensors")]


@case("outputs", expect="ok", may_modify=True, verify=lambda d, out: "" if (
    d / "w.safetensors").stat().st_size > 1000 else "the file was not replaced")
def export_overwrite_when_asked(sh, d):
    (d / "w.safetensors").write_text("an earlier export\n")
    return ["export", "--checkpoint", str(sh.checkpoint), "--out", str(d / "w.safetensors"), "--overwrite"]


@case("outputs")
def export_unknown_suffix(sh, d):
    return ["export", "--checkpoint", str(sh.checkpoint), "--out", str(d / "w.bin")]


@case("outputs")
def export_parent_is_a_file(sh, d):
    (d / "afile").write_text("x")
    return ["export", "--checkpoint", str(sh.checkpoint), "--out", str(d / "afile" / "w.pth")]


@case("outputs")
def export_unwritable_folder(sh, d):
    return ["export", "--checkpoint", str(sh.checkpoint), "--out", "/proc/cplir/w.pth"]


@case("outputs", expect="ok")
def export_into_a_new_folder(sh, d):
    return ["export", "--checkpoint", str(sh.checkpoint), "--out", str(d / "new" / "deeper" / "w.pth")]


@case("outputs")
def cplir_test_results_already_exist(sh, d):
    (d / "eval").mkdir()
    (d / "eval" / "results.json").write_text("{}\n")
    return cplir_test_argv(sh, sh.config, "--out", str(d / "eval"))


@case("outputs")
def cplir_test_images_already_exist(sh, d):
    save_png(d / "eval" / "images" / "denoise" / "img0.png")
    return cplir_test_argv(sh, sh.config, "--out", str(d / "eval"), "--save-images")


@case("outputs")
def cplir_test_out_is_a_file(sh, d):
    (d / "eval").write_text("x")
    return cplir_test_argv(sh, sh.config, "--out", str(d / "eval"))


@case("outputs")
def cplir_test_out_unwritable(sh, d):
    return cplir_test_argv(sh, sh.config, "--out", "/proc/cplir-eval")


@case("outputs", expect="ok", verify=lambda d, out: "" if len(list((d / "eval" / "images").rglob("*.png"))) == 4
      else f"{len(list((d / 'eval' / 'images').rglob('*.png')))} images written for 4 inputs")
def cplir_test_save_images_with_colliding_stems(sh, d):
    data = d / "data"
    for i, rel in enumerate(("a/x.png", "b/x.png", "y.png", "y.jpg")):
        for j, folder in enumerate(("input", "target")):
            path = data / folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.random.default_rng(10 * i + j).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                path, quality=100) if path.suffix == ".jpg" else save_png(path, seed=10 * i + j)
    config = write_config(d / "c.yaml", config_dict(data, d / "runs"))
    return cplir_test_argv(sh, config, "--out", str(d / "eval"), "--save-images")


@case("outputs", expect="ok", may_modify=True)
def preview_overwrite_when_asked(sh, d):
    save_png(d / "preview.png")
    return ["data", "preview", str(sh.config), "--out", str(d / "preview.png"), "--per-task", "1", "--overwrite"]


@case("outputs")
def preview_onto_an_existing_file(sh, d):
    save_png(d / "preview.png")
    return ["data", "preview", str(sh.config), "--out", str(d / "preview.png"), "--per-task", "1"]


@case("outputs")
def train_while_another_trainer_holds_the_run(sh, d):
    from cplir.engine.run_lock import RunLock

    run = copy_run(sh, d)
    HELD.append(RunLock(run, note=lambda _: None).acquire())
    return ["train", "--config", str(run / "config.yaml"), "--resume", "auto", "--no-progress", "--device", "cpu",
            "--set", "train.iterations=3"]


@case("outputs")
def train_fresh_into_a_used_run_folder(sh, d):
    run = copy_run(sh, d)
    return ["train", "--config", str(run / "config.yaml"), "--no-progress", "--device", "cpu"]


HELD: list = []  # locks a case holds while it runs
TIME_LIMIT = 120  # seconds; a case still running then is counted as wrong (e.g. a long run that should not start)


class StillRunning(Exception):
    """Raised by the alarm when a case exceeds TIME_LIMIT."""


def _alarm(signum, frame):
    raise StillRunning(f"still running after {TIME_LIMIT} s")


# ---------------------------------------------------------------------------------------------------------------
# Running and classifying
# ---------------------------------------------------------------------------------------------------------------
def snapshot(folder: Path) -> Dict[str, str]:
    """Content hash of every file under ``folder`` (directories and symlink loops skipped)."""
    found = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if path.is_file():
                found[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return found


def damaged(before: Dict[str, str], after: Dict[str, str]) -> List[str]:
    return sorted(p for p, digest in before.items() if after.get(p) != digest)


def run_case(c: Case, sh: Shared, folder: Path) -> dict:
    folder.mkdir(parents=True)
    try:
        argv = c.setup(sh, folder)
    except Exception as error:  # the case cannot be built here (e.g. a feature this checkout lacks)
        return {"case": c.name, "group": c.group, "kind": "skipped", "status": None, "message": repr(error),
                "overwrote": []}
    before_own, before_shared = snapshot(folder), snapshot(sh.root / "data")
    before_shared.update(snapshot(sh.run))
    out, err = io.StringIO(), io.StringIO()
    escaped = timed_out = ""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    except SystemExit as exit_:  # argparse: usage error, status 2
        status = exit_.code
    except StillRunning as error:
        status, timed_out = None, str(error)
    except BaseException:  # noqa: B036 - anything escaping main is what this script counts
        status, escaped = None, traceback.format_exc()
    finally:
        signal.alarm(0)
    after_shared = snapshot(sh.root / "data")
    after_shared.update(snapshot(sh.run))
    changed = damaged(before_shared, after_shared) + ([] if c.may_modify else damaged(before_own, snapshot(folder)))
    while HELD:  # after the snapshot: the lock the case itself holds goes with its release
        HELD.pop().release()
    # The error line may follow a progress bar on the same terminal line: split at carriage returns too.
    lines = [line.strip() for line in re.split(r"[\r\n]", err.getvalue()) if line.strip()]
    errors = [i for i, line in enumerate(lines) if re.search(rf"\bcplir {argv[0]}\b.*: (error|interrupted)", line)]
    tail = [re.sub(r"^.*?(cplir )", r"\1", lines[errors[0]], count=1)] + lines[errors[0] + 1:] if errors else lines
    if escaped or "Traceback (most recent call last)" in err.getvalue():
        kind = "traceback"
    elif timed_out:
        kind, tail = "wrong", [timed_out]
    elif c.expect == "ok":
        problem = c.verify(folder, out.getvalue()) if status == 0 and c.verify is not None else ""
        kind = "ok" if status == 0 and not problem else "wrong"
        tail = [problem] if problem else tail
    elif status == 0:
        kind = "wrong"
    elif status == 1 and argv[:2] == ["data", "check"]:
        kind = "clear"
    else:
        kind = "clear" if len(tail) == 1 else "multi-line"
    shown = escaped.strip().splitlines()[-1] if escaped else (tail[0] if tail else out.getvalue().strip()[-160:])
    return {"case": c.name, "group": c.group, "kind": kind, "status": status, "message": shown,
            "overwrote": changed}


def main_bench(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one case per group")
    parser.add_argument("-k", default="", help="only cases whose name contains this text")
    parser.add_argument("--json", help="also write the per-case results to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cases = [c for c in CASES if args.k in c.name]
    if args.quick:
        cases = [c for i, c in enumerate(cases) if c.group not in {x.group for x in cases[:i]}]
    results = []
    with tempfile.TemporaryDirectory(prefix="cplir-bad-inputs-") as tmp:
        shared = build_shared(Path(tmp) / "shared")
        for i, c in enumerate(cases):
            result = run_case(c, shared, Path(tmp) / "cases" / f"{i:03d}-{c.name}")
            results.append(result)
            flag = " OVERWROTE " + ", ".join(result["overwrote"]) if result["overwrote"] else ""
            print(f"{result['kind']:<10} {c.group:<12} {c.name:<45} {result['message'][:150]}{flag}", flush=True)
    counts = {kind: sum(r["kind"] == kind for r in results)
              for kind in ("ok", "clear", "multi-line", "traceback", "wrong", "skipped")}
    counts["overwrites"] = sum(bool(r["overwrote"]) for r in results)
    print(f"\n{len(results)} cases: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "cases": results}, indent=2))
    return 0 if counts["traceback"] == counts["wrong"] == counts["overwrites"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main_bench())
