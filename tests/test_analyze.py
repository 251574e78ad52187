"""`cplir analyze` and its parts on tiny models: residual maps with a known mismatch, FLOPs of dense and sparse
prompts against P, the calibration stored by training and export, the command end to end."""

import json
import re

import pytest
import torch
import yaml
from torch import nn

from cplir.analysis import cost
from cplir.analysis.residuals import mismatched_outputs
from cplir.cli import main
from cplir.engine.checkpoint import export_weights, load_training_checkpoint
from cplir.engine.distributed import DistInfo
from cplir.engine.trainer import run_training
from cplir.models import PromptedBackbone, build_model, load_model, register_model, registry, save_model
from trainer_fixtures import TINY_MODEL, make_paired_tree, tiny_config


def tiny(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, **TINY_MODEL).eval()


def only_component_two(model: nn.Module) -> nn.Module:
    """Every block's router prefers component 0, and component 2 is the only non-zero component."""
    with torch.no_grad():
        for block in model.prompt_blocks().values():
            block.linear_layer.weight.zero_()
            block.linear_layer.bias.copy_(torch.tensor([2.0, 0, 0, 0, 0]))
            block.prompt_param[0, [0, 1, 3, 4]] = 0
    return model


def test_residual_maps_show_exactly_the_known_mismatch():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sparse = mismatched_outputs(only_component_two(tiny("cplir")), x)
    # Matched: component 0 (zero); mismatches use components 1, 2, 3, 4: only component 2 changes the output.
    assert [c["prompt1"].tolist() for c in sparse.components] == [[1], [2], [3], [4]]
    same = [torch.equal(out, sparse.matched) for out in sparse.mismatched]
    assert same == [True, False, True, True]
    dense = mismatched_outputs(only_component_two(tiny("promptir")), x)
    # The dense block mixes all components: its output is component 2 weighted by its probability, which is
    # exactly mismatch 2; the zero components differ from it.
    assert [torch.allclose(out, dense.matched, atol=1e-6) for out in dense.mismatched] == [False, True, False, False]
    padded = mismatched_outputs(tiny("cplir"), torch.rand(1, 3, 12, 20), pad_multiple=8)  # cropped back
    assert padded.matched.shape == (1, 3, 12, 20) and len(padded.mismatched) == 4


@pytest.mark.slow
def test_flops_of_sparse_prompts_are_constant_in_p_and_dense_ones_grow_by_the_mixing():
    rows = {(r["prompts"], r["num_prompts"]): r for r in cost.cost_table({"name": "cplir", "args": TINY_MODEL},
                                                                        latency_repeats=0)}
    model = tiny("cplir")
    blocks = model.prompt_blocks().values()
    router = 2 * sum(b.linear_layer.in_features for b in blocks)  # FLOPs of the routers per component
    mixing = 2 * sum(b.prompt_param[0, 0].numel() for b in blocks)  # a dense matrix product per component
    for p in (10, 15):
        assert rows["sparse", p]["flops"] - rows["sparse", 5]["flops"] == router * (p - 5)
    for p in (5, 10, 15):
        assert rows["dense", p]["flops"] - rows["sparse", p]["flops"] == mixing * p
        assert rows["dense", p]["parameters"] == rows["sparse", p]["parameters"]
        assert rows["dense", p]["latency_ms"] is None
    assert rows["sparse", 15]["parameters"] > rows["sparse", 5]["parameters"]
    assert cost.render_flops(model) > 0


@pytest.fixture
def tiny_published(monkeypatch):
    """The "published size" notes of the cost table computed for the tiny model (seconds instead of minutes)."""
    monkeypatch.setattr(cost, "PUBLISHED", {"name": "promptir", "args": TINY_MODEL})
    cost.published_size_note.cache_clear()
    yield
    cost.published_size_note.cache_clear()


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    """A config whose test sets are two fabricated tasks."""
    root = tmp_path_factory.mktemp("analyze")
    tests = [{"benchmark": "paired_folder", "root": str(make_paired_tree(root / name, n=2, seed=i)), "split": "test",
              "options": {"task": name}} for i, name in enumerate(("denoise", "derain"))]
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "cplir", "args": TINY_MODEL}, "data": {"test": tests},
                                    "eval": {"protocol": "promptir"}}))
    return path


@pytest.mark.slow
def test_analyze_a_model_file_end_to_end(two_tasks, tmp_path, tiny_published, capsys):
    model_file = save_model(tiny("cplir"), tmp_path / "tiny.pth")
    out = tmp_path / "analysis"
    assert main(["analyze", "--model", str(model_file), "--config", str(two_tasks), "--out", str(out),
                 "--latency-repeats", "1"]) == 0
    result = json.loads((out / "analysis.json").read_text())
    assert result["images"] == 4 and result["protocol"] == "promptir"
    block = result["blocks"]["prompt1"]
    assert {"entropy_bits", "selection_entropy_bits", "mutual_information", "selection_frequency"} <= set(block)
    tasks = [t for t in block["selection_frequency"]]
    assert len(tasks) == 2 and all(t.endswith(("/denoise", "/derain")) for t in tasks)
    assert 0 <= block["mutual_information"] <= 1 and 0 < block["entropy_bits"]["all"] <= block["max_entropy_bits"]
    assert result["calibration"]["prompt1"] == block["selection_frequency"]
    assert [len(r["mismatched"]) for r in result["residuals"]] == [4, 4]  # one image per task, P - k mismatches
    rows = result["cost"]["rows"]
    assert [(r["prompts"], r["num_prompts"]) for r in rows] == [(k, p) for k in ("dense", "sparse")
                                                                for p in (5, 10, 15)]
    assert all(r["latency_ms"] > 0 for r in rows)
    assert "the same to" in result["cost"]["note"]
    html = (out / "report.html").read_text()
    images = re.findall(r"<img src='([^']+)'", html)
    assert {"figures/selection_maps.png", "figures/selection_frequency.png", "figures/entropy.png",
            "figures/residual_maps.png"} <= set(images)
    assert all((out / image).stat().st_size > 1000 for image in images)
    assert "mutual information" in html and "Table IX" in html
    assert main(["analyze", "--model", str(model_file), "--config", str(two_tasks), "--out", str(out)]) == 2
    assert "already holds analysis.json, report.html, figures" in capsys.readouterr().err  # nothing replaced


class Plain(PromptedBackbone):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def decode(self, feats, x, ctx):
        return x + self.conv(x)


def test_a_plain_backbone_is_said_to_have_no_prompts(two_tasks, tmp_path, capsys):
    config = tmp_path / "plain.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(two_tasks.read_text()), "model": {"name": "plain_toy"}}))
    register_model("plain_toy")(Plain)
    try:
        model_file = save_model(build_model("plain_toy"), tmp_path / "plain.pth")
        assert main(["analyze", "--model", str(model_file), "--config", str(two_tasks), "--out", str(tmp_path),
                     "--latency-repeats", "0"]) == 2  # the config describes another model: refused, as by test
        assert "holds a 'plain_toy' model but the config describes 'cplir'" in capsys.readouterr().err
        assert main(["analyze", "--model", str(model_file), "--config", str(config), "--out", str(tmp_path),
                     "--latency-repeats", "0"]) == 0
    finally:
        registry._MODELS.pop("plain_toy")
    result = json.loads((tmp_path / "analysis.json").read_text())
    assert "blocks" not in result and [r["prompts"] for r in result["cost"]["rows"]] == ["none"]
    assert "has no prompt blocks" in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_training_stores_the_calibration_in_checkpoints_and_exports(tmp_path, tiny_published, capsys):
    data = make_paired_tree(tmp_path / "data", n=4)
    cfg = tiny_config(data, tmp_path / "runs", train__iterations=2, train__val_every=0, train__save_every=1)
    run_training(cfg, DistInfo(), progress=False)
    first = load_training_checkpoint(cfg.run_dir / "checkpoints" / "iter_00000001.pth")
    last = load_training_checkpoint(cfg.run_dir / "checkpoints" / "iter_00000002.pth")
    assert first["calibration"] is None  # measured by the final validation only
    calibration = last["calibration"]
    assert list(calibration) == ["prompt3", "prompt2", "prompt1"]
    assert all(list(c) == ["denoise"] and len(c["denoise"]) == 5 and sum(c["denoise"]) == pytest.approx(1)
               for c in calibration.values())
    exported = export_weights(cfg.run_dir / "checkpoints" / "iter_00000002.pth", tmp_path / "model.pth")
    assert load_model(exported).calibration == calibration
    out = tmp_path / "analysis"  # the checkpoint carries its config: --config is optional
    assert main(["analyze", "--model", str(cfg.run_dir / "checkpoints" / "iter_00000002.pth"), "--out", str(out),
                 "--latency-repeats", "0"]) == 0
    assert json.loads((out / "analysis.json").read_text())["calibration"] == calibration
    assert main(["analyze", "--model", str(exported), "--out", str(out)]) == 2
    assert "pass --config" in capsys.readouterr().err
