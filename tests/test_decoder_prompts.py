"""The published backbones with prompts in their decoder (Restormer, NAFNet, DRSformer, FSNet, MambaIR): outputs
equal to the published code without prompts, published weights loading into the prompted network, routing, CPR
negatives batched = naive, and a CPR training run through the unchanged trainer."""

import pytest
import torch

from cplir.engine.distributed import DistInfo
from cplir.engine.prompt_negatives import draw_negative_choices, prompt_negatives_batched, prompt_negatives_naive
from cplir.engine.run_log import read_log
from cplir.engine.trainer import run_training
from golden import fill_deterministic, state_shapes
from prompted_backbones import CPR, TINY, golden_model, tiny
from trainer_fixtures import make_paired_tree, tiny_config

GOLDEN = {  # golden file (tests/golden/README.md) -> registered model
    "restormer_tiny": "restormer", "restormer_dual_pixel": "restormer", "nafnet_tiny": "nafnet",
    "drsformer_tiny": "drsformer", "fsnet_tiny": "fsnet", "fsnet_window80_tiny": "fsnet", "mambair_tiny": "mambair",
}


@pytest.mark.parametrize("reference", sorted(GOLDEN))
def test_output_equals_published(reference):
    model, ref = golden_model(reference, GOLDEN[reference])
    assert model.prompt_names == ()  # prompt=None is the published network
    with torch.no_grad():
        out = model(ref["input"])
    assert out.shape == ref["output"].shape
    torch.testing.assert_close(out, ref["output"], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_published_weights_load_into_the_prompted_network(name):
    plain, prompted = tiny(name, None), tiny(name, "sparse")
    published = state_shapes(plain)
    assert {k: v for k, v in state_shapes(prompted).items() if k in published} == published
    result = prompted.load_state_dict(fill_deterministic(plain).state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(k.startswith(("prompt", "fuse")) for k in result.missing_keys)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("prompt", ["dense", "sparse"])
def test_prompted_forward_reports_routing_of_every_block(name, prompt):
    model = tiny(name, prompt)
    assert model.shares_encoder and model.prompt_names
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, routing = model(x, return_routing=True)
        plain = tiny(name, None)(x)
    assert out.shape == x.shape and list(routing) == list(model.prompt_names)
    for r in routing.values():
        assert r["probs"].shape == (2, 5) and r["indices"].shape == (2, 1)
        torch.testing.assert_close(r["probs"].sum(1), torch.ones(2))
    assert not torch.allclose(out, plain, atol=1e-3)  # the prompts change the output


@pytest.mark.parametrize("name, per_pass", [("nafnet", 0), ("nafnet", 1), ("restormer", 1), ("drsformer", 0),
                                            ("fsnet", 0), ("mambair", 1)])
def test_batched_negatives_equal_the_naive_path(name, per_pass):
    model = tiny(name, "sparse")
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    draws = draw_negative_choices(4, len(model.prompt_names), 3, torch.Generator().manual_seed(1))
    with torch.no_grad():
        positive, feats = model(x, return_features=True)
    batched = prompt_negatives_batched(model, feats, x, draws, per_pass)
    naive = prompt_negatives_naive(model, x, draws)
    assert batched.shape == (4, 3, 3, 16, 16)
    torch.testing.assert_close(batched, naive, atol=1e-5, rtol=1e-5)
    assert (naive - positive).abs().amax() > 1e-3  # mismatched prompts give other images


def test_negatives_leave_the_batch_norm_running_statistics_alone():
    model = tiny("fsnet", "sparse").train()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    draws = draw_negative_choices(4, len(model.prompt_names), 3, torch.Generator().manual_seed(1))

    def statistics():
        return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}

    assert statistics()
    with torch.no_grad():
        positive, feats = model(x, return_features=True)
    after_positive = statistics()
    batched = prompt_negatives_batched(model, feats, x, draws, per_pass=1)
    naive = prompt_negatives_naive(model, x, draws)
    for key, value in statistics().items():
        assert torch.equal(value, after_positive[key]), key
    model(x)  # a training-mode forward does move them, so the check above can fail
    assert any(not torch.equal(v, after_positive[k]) for k, v in statistics().items())
    torch.testing.assert_close(batched, naive, atol=1e-5, rtol=1e-5)  # batch statistics of B images in both
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in ("nafnet", "restormer") else pytest.mark.slow)
                                  for n in sorted(TINY)])
def test_sparse_prompted_backbone_trains_with_cpr(name, tmp_path):
    data_root = make_paired_tree(tmp_path / "pairs", n=4)
    cfg = tiny_config(data_root, tmp_path / "runs", model={"name": name, "args": dict(TINY[name], prompt="sparse")},
                      **CPR, train__iterations=2, train__val_every=0, train__save_every=2)
    run_training(cfg, DistInfo(), progress=False)
    logged = read_log(cfg.run_dir, "train")
    assert [r["iteration"] for r in logged] == [1, 2]
    assert all(r["cpr_neg"] > 0 and r["loss"] == pytest.approx(r["l1"] + r["cpr"], rel=1e-5) for r in logged)
