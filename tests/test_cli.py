"""The command line: `cplir test` tells the whole story, checkpoints know their model, help that helps."""

import argparse
import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from cplir.cli import build_parser, main
from cplir.config import dump_config, load_config
from cplir.data.image_io import read_image, to_tensor
from cplir.metrics import psnr_torch, ssim_torch
from trainer_fixtures import trained_run

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("cli"))


def rows(path: Path) -> list:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_cplir_test_without_config_uses_the_checkpoints_own_and_writes_next_to_it(run, capsys):
    cfg, ckpt = run
    assert main(["test", "--checkpoint", str(ckpt), "--device", "cpu"]) == 0
    out = ckpt.parent / "iter_00000003-test"
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["name"] == cfg.name and results["complete"] is True
    assert results["checkpoint"] == str(ckpt) and results["weights"] == "ema"
    printed = capsys.readouterr().out
    assert "input PSNR  input SSIM" in printed and "protocol: basicsr_rgb" in printed


def test_per_image_scores_and_the_degraded_input_as_baseline(run, tmp_path):
    cfg, ckpt = run
    assert main(["test", "--checkpoint", str(ckpt), "--out", str(tmp_path), "--device", "cpu"]) == 0
    table = rows(tmp_path / "results.csv")
    assert list(table[0]) == ["task", "images", "psnr", "ssim", "input_psnr", "input_ssim", "protocol",
                              "crop_border"]
    assert [r["task"] for r in table] == ["denoise", "average"]
    images = rows(tmp_path / "per_image.csv")
    assert [r["image"] for r in images] == [f"input/img{i:02d}.png" for i in range(8)]
    assert {r["set"] for r in images} == {"paired_folder"} and {r["protocol"] for r in images} == {"basicsr_rgb"}
    root = Path(cfg.data.train.root)
    lq, gt = (to_tensor(read_image(root / folder / "img03.png")) for folder in ("input", "target"))
    assert float(images[3]["input_psnr"]) == pytest.approx(psnr_torch(lq, gt, "basicsr_rgb").item(), abs=1e-4)
    assert float(images[3]["input_ssim"]) == pytest.approx(ssim_torch(lq, gt, "basicsr_rgb").item(), abs=1e-6)
    mean = sum(float(r["psnr"]) for r in images) / len(images)
    assert float(table[0]["psnr"]) == pytest.approx(mean, abs=1e-3)
    assert float(table[0]["input_psnr"]) != pytest.approx(float(table[0]["psnr"]), abs=1e-3)


def test_a_config_of_another_model_is_refused_with_both_names(run, tmp_path, capsys):
    cfg, ckpt = run
    other = load_config(cfg.run_dir / "config.yaml", ["model.name=promptir"])
    dump_config(other, tmp_path / "other.yaml")
    assert main(["test", "--checkpoint", str(ckpt), "--config", str(tmp_path / "other.yaml"), "--out",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds a 'cplir' model but the config describes 'promptir'" in err


def test_a_config_with_other_model_arguments_is_refused(run, tmp_path, capsys):
    cfg, ckpt = run
    assert main(["test", "--checkpoint", str(ckpt), "--config", str(cfg.run_dir / "config.yaml"),
                 "--set", "model.args.top_k=2", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "with other arguments: top_k 1 in the checkpoint, 2 in the config" in err
    # the same model spelled with its defaults written out is the same model
    assert main(["test", "--checkpoint", str(ckpt), "--config", str(cfg.run_dir / "config.yaml"),
                 "--set", "model.args.top_k=1", "--set", "model.args.num_prompts=5", "--out", str(tmp_path),
                 "--device", "cpu"]) == 0


def test_a_model_file_carries_no_test_sets_so_it_needs_a_config(run, tmp_path, capsys):
    cfg, ckpt = run
    model = tmp_path / "m.safetensors"
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(model)]) == 0
    assert main(["test", "--checkpoint", str(model)]) == 2
    assert "is a model file: it carries no test sets or evaluation settings; pass --config" in \
        capsys.readouterr().err
    assert main(["test", "--checkpoint", str(model), "--config", str(cfg.run_dir / "config.yaml"),
                 "--device", "cpu"]) == 0
    assert (tmp_path / "m-test" / "results.json").is_file()


def _actions(parser: argparse.ArgumentParser, prefix: str = "cplir"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{prefix} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield prefix, action


def test_every_option_has_a_help_text():
    missing = [f"{where} {'/'.join(a.option_strings) or a.dest}" for where, a in _actions(build_parser())
               if not a.help]
    assert not missing


def test_top_level_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    for command in ("cplir demo", "cplir data check", "cplir train", "--resume auto", "cplir test", "cplir export"):
        assert command in out


def test_docs_say_what_an_exponent_without_a_dot_does(tmp_path):
    text = (DOCS / "configs.md").read_text()
    assert "rejects it" not in text and "3e-3" in text
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"args": {"dim": 8, "num_blocks": [1, 1, 1, 1],
                                                       "num_refinement_blocks": 1}}}))
    cfg = load_config(path, ["loss.cpr.alpha=3e-3", "train.optim.lr=2e-4"])
    assert cfg.loss.cpr.alpha == 0.003 and cfg.train.optim.lr == 0.0002
    assert re.search(r"`--set [^`]*=3e-3`", text)
