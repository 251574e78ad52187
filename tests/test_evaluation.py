"""Evaluation settings of the published test configs: padding mode, which BasicSR weights, LPIPS or ``n/a``."""

import json

import pytest
import torch

import cplir.engine.evaluation as evaluation
from cplir.engine.evaluation import build_test_sets, evaluate, format_table
from cplir.engine.testing import run_test
from cplir.errors import CheckpointError, InputSizeError
from cplir.inference import run_padded, run_tiled
from cplir.metrics.lpips import LPIPS
from cplir.models import build_model
from cplir.models.model_file import basicsr_container
from trainer_fixtures import make_paired_tree, tiny_config


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_paired_tree(tmp_path_factory.mktemp("pairs"), n=3, size=40)


@pytest.fixture(autouse=True)
def no_lpips_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for var in ("CPLIR_ALEXNET_WEIGHTS", "CPLIR_LPIPS_ALEX_HEADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("cplir.metrics.lpips._packaged_heads", lambda net: None)


def test_run_padded_pads_with_the_requested_mode():
    x = torch.arange(2 * 3 * 12 * 13, dtype=torch.float32).view(2, 3, 12, 13)
    seen = {}

    def model(padded):
        seen["padded"] = padded
        return padded.flip(-1)  # the output depends on the padded columns

    reflect = run_padded(model, x, 16, "reflect")
    assert seen["padded"].shape[-2:] == (16, 16)
    assert torch.equal(seen["padded"][..., :12, 13], x[..., :, 11])  # a b c d | c b a: column 13 mirrors 11
    zeros = run_padded(model, x, 16, "constant")
    assert torch.equal(seen["padded"][..., 12:, :], torch.zeros(2, 3, 4, 16))
    assert reflect.shape == zeros.shape == x.shape and not torch.equal(reflect, zeros)


def test_evaluation_uses_the_configured_pad_mode_and_scores_lpips(data_root, tmp_path, monkeypatch):
    cfg = tiny_config(data_root, tmp_path, eval__pad_multiple=16, eval__pad_mode="replicate")
    modes = []
    original = evaluation.run_padded
    monkeypatch.setattr(evaluation, "run_padded", lambda m, x, k, mode: modes.append((k, mode)) or original(m, x, k,
                                                                                                        mode))
    model = build_model(cfg.model.name, **cfg.model.args).eval()
    metric = LPIPS("alex", "random", "random")
    e = cfg.eval
    per_task = evaluate(model, build_test_sets(cfg), e.protocol, e.crop_border, e.pad_multiple,
                        pad_mode=e.pad_mode, lpips=metric)
    assert modes == [(16, "replicate")] * 3
    assert set(per_task["denoise"]) == {"psnr", "ssim", "l1", "lpips", "count"}
    assert per_task["denoise"]["lpips"] > 0
    table = format_table(per_task, e.protocol)
    assert "LPIPS" in table.splitlines()[1] and f"{per_task['denoise']['lpips']:.4f}" in table


@pytest.mark.slow
def test_tiled_evaluation_serves_a_network_of_one_input_size(tmp_path):
    """IDT takes img_size x img_size inputs only: eval.tile restores the 80x80 test images in 64x64 tiles."""
    root = make_paired_tree(tmp_path / "pairs", n=2, size=80)
    cfg = tiny_config(root, tmp_path, model={"name": "idt", "args": {"img_size": 64, "embed_dim": 8}},
                      data__crop_size=64, eval__tile=64, eval__tile_overlap=16)
    torch.manual_seed(0)
    model = build_model(cfg.model.name, **cfg.model.args).eval()
    e, sets = cfg.eval, build_test_sets(cfg)
    with pytest.raises(InputSizeError, match="64x64"):
        evaluate(model, sets, e.protocol, e.crop_border, e.pad_multiple)
    tiled = evaluate(model, sets, e.protocol, e.crop_border, e.pad_multiple, tile=e.tile, tile_overlap=e.tile_overlap)
    by_hand = evaluate(lambda x: run_tiled(model, x, 64, 16), sets, e.protocol, e.crop_border, e.pad_multiple)
    assert tiled["denoise"]["count"] == 2 and tiled == by_hand


def basicsr_file(cfg, path):
    """A BasicSR-style file: ``params`` and ``params_ema`` from two different random models."""
    torch.manual_seed(0)
    params = build_model(cfg.model.name, **cfg.model.args).state_dict()
    torch.manual_seed(1)
    params_ema = build_model(cfg.model.name, **cfg.model.args).state_dict()
    torch.save({"params": params, "params_ema": params_ema}, path)
    return params, params_ema


def test_which_basicsr_weights_are_loaded_is_a_visible_choice(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path, eval__weights="model", eval__lpips={"enabled": True})
    params, params_ema = basicsr_file(cfg, tmp_path / "cplir.pth")
    default = run_test(cfg, tmp_path / "cplir.pth", out_dir=str(tmp_path / "a"), device="cpu")
    ema = run_test(cfg, tmp_path / "cplir.pth", out_dir=str(tmp_path / "b"), weights="ema", device="cpu")
    assert default["denoise"]["psnr"] != ema["denoise"]["psnr"]
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert (a["weights_key"], b["weights_key"]) == ("params", "params_ema")
    assert a["pad"] == {"multiple": 8, "mode": "reflect"}
    # LPIPS was asked for but its weights are absent: n/a with the reason, never a number
    assert a["lpips"] == "n/a" and "alexnet-owt-7be5be79.pth" in a["lpips_note"]
    assert "lpips" not in a["tasks"]["denoise"]
    rows = (tmp_path / "a" / "results.csv").read_text().splitlines()
    assert rows[0] == "task,images,psnr,ssim,lpips,input_psnr,input_ssim,protocol,crop_border"
    assert rows[1].split(",")[4] == "n/a"


def test_basicsr_weights_choice_follows_basicsr():
    a, b = {"w": torch.zeros(1)}, {"w": torch.ones(1)}
    assert basicsr_container({"params": a, "params_ema": b}, "model") == "params"
    assert basicsr_container({"params": a, "params_ema": b}, "ema") == "params_ema"
    assert basicsr_container({"params": a}, "ema") == "params"  # BasicSR's fallback
    assert basicsr_container({"state_dict": a}, "model") == ""  # not a BasicSR file
    with pytest.raises(CheckpointError, match="no 'params' weights"):
        basicsr_container({"params_ema": b}, "model")
