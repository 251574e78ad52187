"""Resume checks the config against the checkpoint's, cleans up after a crash and says what its logs average."""

import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from cplir.cli import main
from cplir.config import config_from_dict, to_dict
from cplir.engine.checkpoint import atomic_save
from cplir.engine.resume import check_resume_config, config_changes
from cplir.engine.run_log import read_log
from cplir.errors import ConfigError
from cplir.models import build_model, save_model
from trainer_fixtures import TINY_MODEL, trained_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("resume"), train__log_every=4)


def resume(cfg, out: Path, *overrides: str, flags=()) -> int:
    """Resume a copy of the run under ``out`` (output_dir may change freely)."""
    if not (out / cfg.name).exists():
        shutil.copytree(cfg.run_dir, out / cfg.name)
    sets = [a for o in (f"output_dir={out}", *overrides) for a in ("--set", o)]
    return main(["train", "--config", str(out / cfg.name / "config.yaml"), "--resume", "auto", "--no-progress",
                 "--device", "cpu", *sets, *flags])


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_resume_with_another_seed_is_refused_listing_the_key(run, tmp_path, capsys):
    cfg, _ = run
    shutil.copytree(cfg.run_dir, tmp_path / cfg.name)
    before = snapshot(tmp_path / cfg.name)
    assert resume(cfg, tmp_path, "seed=7") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "differs from the checkpoint's in what shapes training: seed 1 -> 7" in err
    assert "--allow-config-change" in err
    assert snapshot(tmp_path / cfg.name) == before  # config.yaml, log and checkpoints untouched


def test_a_cpl_checkpoint_does_not_resume_under_a_promptir_config(run, tmp_path, capsys):
    cfg, _ = run
    assert resume(cfg, tmp_path, "model.name=promptir") == 2
    assert "model.name 'cplir' -> 'promptir'" in capsys.readouterr().err


def test_changed_learning_rate_and_crop_are_both_listed(run, tmp_path, capsys):
    cfg, _ = run
    assert resume(cfg, tmp_path, "train.optim.lr=0.01", "data.crop_size=8", "eval.crop_border=2") == 2
    err = capsys.readouterr().err
    assert "data.crop_size 16 -> 8" in err and "train.optim.lr 0.001 -> 0.01" in err
    assert "eval.crop_border" not in err  # validation settings may change


def test_extending_iterations_under_an_implicit_schedule_names_the_schedule(run, tmp_path, capsys):
    cfg, _ = run
    assert resume(cfg, tmp_path, "train.iterations=5") == 2
    err = capsys.readouterr().err
    assert "train.optim.schedule_iters 3 -> 5" in err and "--set train.optim.schedule_iters=3" in err


def test_extending_iterations_is_accepted_and_the_first_record_says_what_it_averages(run, tmp_path):
    cfg, _ = run
    assert resume(cfg, tmp_path, "train.iterations=8", "train.optim.schedule_iters=3") == 0
    folder = tmp_path / cfg.name
    train = read_log(folder, "train")
    assert [(r["iteration"], r["iterations_averaged"]) for r in train] == [(3, 3), (4, 1), (8, 4)]
    header = read_log(folder, "run")[-1]
    assert header["resumed_from"].endswith("iter_00000003.pth")
    assert header["config_changes"]["train.iterations"] == [3, 8]
    kept = yaml.safe_load((folder / "config.until-iter_00000003.yaml").read_text())
    assert kept["train"]["iterations"] == 3 and yaml.safe_load((folder / "config.yaml").read_text())["train"][
        "iterations"] == 8


def test_allow_config_change_continues_and_keeps_both_configs(run, tmp_path):
    cfg, _ = run
    assert resume(cfg, tmp_path, "seed=7", flags=["--allow-config-change"]) == 0
    folder = tmp_path / cfg.name
    assert yaml.safe_load((folder / "config.until-iter_00000003.yaml").read_text())["seed"] == 1
    assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == 7
    assert read_log(folder, "run")[-1]["config_changes"]["seed"] == [1, 7]


def test_what_may_change_and_what_may_not(run):
    cfg, _ = run
    saved = to_dict(cfg)
    free = dict(saved, name="other", train={**saved["train"], "val_every": 1, "keep_checkpoints": 9},
                data={**saved["data"], "num_workers": 3, "max_val_images": 2, "test": []},
                eval={**saved["eval"], "crop_border": 4})
    assert config_changes(saved, cfg) == []
    changes = check_resume_config(saved, config_from_dict(free))
    assert {key for key, _, _ in changes} == {"name", "train.val_every", "train.keep_checkpoints",
                                              "data.num_workers", "data.max_val_images", "data.test",
                                              "eval.crop_border"}
    shaping = dict(saved, loss={**saved["loss"], "l1": 0.5}, train={**saved["train"], "ema_decay": 0.5},
                   data={**saved["data"], "train": {**saved["data"]["train"], "root": "/elsewhere"}})
    with pytest.raises(ConfigError) as caught:
        check_resume_config(saved, config_from_dict(shaping))
    for key in ("loss.l1", "train.ema_decay", "data.train.root"):
        assert key in str(caught.value)


def test_stale_checkpoint_temporaries_are_removed_at_the_next_start(run, tmp_path, capsys):
    cfg, _ = run
    shutil.copytree(cfg.run_dir, tmp_path / cfg.name)
    stale = tmp_path / cfg.name / "checkpoints" / ".iter_00000006.pth.k3j2_x.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert resume(cfg, tmp_path, "train.iterations=4", "train.optim.schedule_iters=3") == 0
    assert not stale.exists()
    assert "removed 1 temporary file(s) of an interrupted checkpoint write" in capsys.readouterr().err
    assert read_log(tmp_path / cfg.name, "run")[-1]["removed_temporaries"] == [str(stale)]


def test_checkpoints_and_model_files_honour_the_umask(tmp_path):
    model = build_model("cplir", **TINY_MODEL)
    old = os.umask(0o027)
    try:
        paths = [atomic_save({"x": torch.zeros(1)}, tmp_path / "ckpt.pth"),
                 save_model(model, tmp_path / "m.pth"), save_model(model, tmp_path / "m.safetensors")]
    finally:
        os.umask(old)
    assert [oct(p.stat().st_mode & 0o777) for p in paths] == [oct(0o640)] * 3
