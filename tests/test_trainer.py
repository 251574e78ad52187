"""The training engine end to end on tiny models and tiny fabricated data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cplir.cli import main
from cplir.engine.checkpoint import list_checkpoints, load_training_checkpoint
from cplir.engine.distributed import DistInfo
from cplir.engine.evaluation import build_test_sets, evaluate, flatten
from cplir.engine.run_log import read_log
from cplir.engine.trainer import Trainer, run_training
from cplir.errors import CplirError
from cplir.models import build_model, load_weights
from trainer_fixtures import interrupt_then_resume, make_paired_tree, tiny_config

CPR = {"loss__cpr__enabled": True, "loss__cpr__vgg_weights": "random", "loss__cpr__num_negatives": 2,
       "loss__cpr__layers": ["relu1_1", "relu2_1"], "loss__cpr__layer_weights": [0.5, 1.0]}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_paired_tree(tmp_path_factory.mktemp("pairs"))


@pytest.mark.slow
def test_training_run_writes_logs_checkpoints_and_config(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path, **CPR)
    result = run_training(cfg, DistInfo(), progress=False)
    run = cfg.run_dir
    assert (run / "config.yaml").is_file()
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["iter_00000003.pth", "iter_00000006.pth"]
    train = read_log(run, "train")
    assert [r["iteration"] for r in train] == [1, 2, 3, 4, 5, 6]
    for r in train:  # every term of the objective is logged
        assert {"loss", "l1", "cpr", "cpr_pos", "cpr_neg", "lr"} <= set(r)
        assert r["loss"] == pytest.approx(r["l1"] + r["cpr"], rel=1e-5)
        assert r["cpr"] == pytest.approx(cfg.loss.cpr.alpha * (r["cpr_pos"] - r["cpr_neg"]), rel=1e-4, abs=1e-9)
        assert r["cpr_neg"] > 0  # mismatched prompts really change the output
    assert train[0]["lr"] == pytest.approx(5e-4)  # warm-up: (0 + 1) / 2 of the base rate
    val = read_log(run, "val")
    assert [r["iteration"] for r in val] == [0, 3, 6] and all(r["protocol"] == "basicsr_rgb" for r in val)
    assert result["psnr"] == val[-1]["psnr"] and "denoise/psnr" in result
    header = read_log(run, "run")[0]
    assert any("RANDOM VGG" in label for label in header["feature_labels"])
    state = load_training_checkpoint(run / "checkpoints" / "iter_00000006.pth")
    assert state["iteration"] == 6 and state["config"]["name"] == "tiny"
    assert state["ema"] is not None and state["objective"] == {}  # CPR keeps no state between steps


def _losses(run: Path):
    return {r["iteration"]: r["loss"] for r in read_log(run, "train")}


SPN = {"loss__spn__enabled": True, "loss__spn__vgg_weights": "random", "loss__spn__intervals": [1, 2],
       "loss__spn__decays": [0.5]}


# spn_adaptive: threshold 0 refreshes one model per step, so a resume that lost the round-robin count (3 at the
# checkpoint) would refresh model 0 instead of model 1 next.
@pytest.mark.parametrize("extra", [
    pytest.param(CPR, id="cpr"),
    pytest.param(SPN, id="spn", marks=pytest.mark.slow),
    pytest.param({**SPN, "loss__spn__refresh": "adaptive", "loss__spn__adaptive_threshold": 0.0}, id="spn_adaptive",
                 marks=pytest.mark.slow)])
def test_resume_continues_the_same_trajectory(data_root, tmp_path, extra, monkeypatch):
    """Interrupt after 4 of 6 iterations (the last checkpoint is at 3, mid-epoch: 4 batches per epoch), resume,
    compare; the log keeps each iteration once (what came after the checkpoint is dropped and redone)."""
    whole = tiny_config(data_root, tmp_path / "whole", **extra)
    run_training(whole, DistInfo(), progress=False)

    cut = tiny_config(data_root, tmp_path / "cut", **extra)
    assert interrupt_then_resume(cut, 4, monkeypatch) == [1, 2, 3, 4]

    a, b = _losses(whole.run_dir), _losses(cut.run_dir)
    assert [r["iteration"] for r in read_log(cut.run_dir, "train")] == [1, 2, 3, 4, 5, 6]
    assert [r["iteration"] for r in read_log(cut.run_dir, "val")] == [0, 3, 6]
    for it in range(1, 7):
        assert b[it] == pytest.approx(a[it], abs=1e-6), it
    final_a = load_training_checkpoint(whole.run_dir / "checkpoints" / "iter_00000006.pth")
    final_b = load_training_checkpoint(cut.run_dir / "checkpoints" / "iter_00000006.pth")
    for part in ("model", "ema"):
        for key, value in final_a[part].items():
            torch.testing.assert_close(final_b[part][key], value, rtol=0, atol=1e-6)
    opt_a, opt_b = final_a["optimizer"], final_b["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    for index, moments in opt_a["state"].items():  # AdamW step counts and both moment estimates
        for name, value in moments.items():
            torch.testing.assert_close(opt_b["state"][index][name], value, rtol=0, atol=1e-6)
    assert final_a["scaler"] == final_b["scaler"]
    for name, saved in final_a["objective"].items():  # the SPN negative-model bank
        for key, value in saved.items():
            torch.testing.assert_close(final_b["objective"][name][key], value, rtol=0, atol=1e-6)


def test_a_used_run_folder_is_not_overwritten(data_root, tmp_path, capsys):
    cfg = tiny_config(data_root, tmp_path, train__iterations=3, train__val_every=0)
    run_training(cfg, DistInfo(), progress=False)
    saved = (cfg.run_dir / "checkpoints" / "iter_00000003.pth").read_bytes()
    config = str(cfg.run_dir / "config.yaml")
    assert main(["train", "--config", config, "--no-progress"]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    assert (cfg.run_dir / "checkpoints" / "iter_00000003.pth").read_bytes() == saved
    assert len(read_log(cfg.run_dir, "train")) == 3


@pytest.mark.slow
def test_batched_and_naive_negatives_train_alike(data_root, tmp_path):
    runs = []
    for batched in (True, False):
        cfg = tiny_config(data_root, tmp_path / str(batched), **CPR, loss__cpr__batched_negatives=batched,
                          train__iterations=3, train__val_every=0)
        run_training(cfg, DistInfo(), progress=False)
        runs.append(_losses(cfg.run_dir))
    for it in (1, 2, 3):
        assert runs[0][it] == pytest.approx(runs[1][it], abs=1e-5)


def test_every_parameter_gets_a_gradient_under_top1_routing(data_root, tmp_path):
    """What lets DDP run with find_unused_parameters=False (so a truly unused parameter stays an error)."""
    trainer = Trainer(tiny_config(data_root, tmp_path, **CPR), DistInfo(), progress=False)
    batch = next(trainer.batches())
    with torch.no_grad():  # the positive pass's routing, computed with the weights the step starts from
        _, routing = trainer.net(batch["lq"], return_routing=True)
    positive = {n: r["indices"] for n, r in routing.items()}
    trainer.training_step(batch["lq"], batch["gt"])
    assert all(p.grad is not None for p in trainer.net.parameters())
    for name, block in trainer.net.prompt_blocks().items():  # unselected components: exactly zero
        chosen = set(positive[name].flatten().tolist())
        norms = block.prompt_param.grad[0].flatten(1).abs().sum(1)
        assert all((norms[j] > 0) == (j in chosen) for j in range(block.num_prompts))


def test_cpr_config_reaches_the_loss(data_root, tmp_path):
    """form: code turns channel normalisation on unless the config says otherwise; vgg picks the network."""
    def loss(**extra):
        trainer = Trainer(tiny_config(data_root, tmp_path, **CPR, **extra), DistInfo(), progress=False)
        return trainer.objective["cpr"].loss

    paper, code = loss(), loss(loss__cpr__form="code")
    assert (paper.channel_norm, paper.positive, paper.negative_reduction) == (False, True, "mean")
    assert (code.channel_norm, code.positive, code.negative_reduction) == (True, False, "sum")
    assert loss(loss__cpr__form="code", loss__cpr__channel_norm=False).channel_norm is False
    assert paper.vgg.arch == "vgg19" and loss(loss__cpr__vgg="vgg16").vgg.arch == "vgg16"


@pytest.mark.slow
def test_bf16_autocast_run_trains(data_root, tmp_path):
    cfg = tiny_config(data_root, tmp_path, **CPR, train__amp="bf16", train__iterations=2, train__val_every=0)
    run_training(cfg, DistInfo(), progress=False)
    losses = _losses(cfg.run_dir)
    assert sorted(losses) == [1, 2] and all(0 < v < 1 for v in losses.values())


def test_fp16_needs_cuda(data_root, tmp_path):
    with pytest.raises(CplirError, match="fp16 needs a CUDA device"):
        Trainer(tiny_config(data_root, tmp_path, train__amp="fp16"), DistInfo(), progress=False)


def test_bad_config_value_is_a_clear_cli_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  iterations: -3\n")
    assert main(["train", "--config", str(path)]) == 2
    assert "train.iterations must be at least 1" in capsys.readouterr().err


def test_missing_training_data_is_a_clear_cli_error(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"data:\n  train: {{benchmark: paired_folder, root: {tmp_path / 'nope'}}}\n")
    assert main(["train", "--config", str(path), "--set", "model.args.dim=8"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


@pytest.mark.slow
def test_cplir_test_on_a_trained_checkpoint(data_root, tmp_path, capsys):
    cfg = tiny_config(data_root, tmp_path, train__iterations=3, train__val_every=0)
    run_training(cfg, DistInfo(), progress=False)
    ckpt = cfg.run_dir / "checkpoints" / "iter_00000003.pth"
    code = main(["test", "--config", str(cfg.run_dir / "config.yaml"), "--checkpoint", str(ckpt),
                 "--out", str(tmp_path / "eval"), "--save-images", "--device", "cpu"])
    assert code == 0
    out = capsys.readouterr().out
    assert "protocol: basicsr_rgb" in out and "denoise" in out and "average" in out
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["protocol"] == "basicsr_rgb" and results["tasks"]["denoise"]["count"] == 8
    csv_lines = (tmp_path / "eval" / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("task,images,psnr,ssim,input_psnr,input_ssim,protocol") and len(csv_lines) == 3
    assert len(list((tmp_path / "eval" / "images").rglob("*.png"))) == 8
    # the EMA weights were evaluated: an exported file of them scores the same
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "w.safetensors")]) == 0
    model = load_weights(build_model("cplir", **cfg.model.args), tmp_path / "w.safetensors")
    ema = load_training_checkpoint(ckpt)["ema"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ema.items())


def train_on_two_ranks(cfg_path: Path, out: Path) -> list:
    """Train the config with torchrun on two gloo processes (tests/ddp_worker.py); each rank's final weights."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--standalone", str(Path(__file__).parent / "ddp_worker.py"), str(cfg_path), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.slow
def test_fsnet_with_cpl_trains_under_ddp_although_its_side_heads_get_no_gradient(data_root, tmp_path):
    from prompted_backbones import TINY

    from cplir.config import dump_config
    cfg_path = tmp_path / "ddp.yaml"
    cfg = tiny_config(data_root, tmp_path / "runs", **CPR, train__iterations=2, train__val_every=0,
                      model={"name": "fsnet", "args": dict(TINY["fsnet"], prompt="sparse")}, data__batch_size=4)
    dump_config(cfg, cfg_path)
    ranks = train_on_two_ranks(cfg_path, tmp_path)
    parameters = {name for name, _ in build_model("fsnet", **cfg.model.args).named_parameters()}
    for key in parameters:  # BatchNorm buffers are per rank until DDP broadcasts rank 0's at the next forward
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0] if "running_" in k)


@pytest.mark.slow
def test_two_process_gloo_ddp_run(data_root, tmp_path):
    cfg_path = tmp_path / "ddp.yaml"
    from cplir.config import dump_config
    cfg = tiny_config(data_root, tmp_path / "runs", **CPR, train__iterations=4, train__val_every=2,
                      train__save_every=2)
    dump_config(cfg, cfg_path)
    ranks = train_on_two_ranks(cfg_path, tmp_path)
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        torch.testing.assert_close(ranks[0][key], ranks[1][key], rtol=0, atol=0)
    start = build_model("cplir", **cfg.model.args).state_dict()  # it did train
    assert any(not torch.equal(start[k], ranks[0][k]) for k in start)
    # rank 0 alone wrote logs and checkpoints; validation was sharded and reduced over both ranks
    assert [p.name for p in list_checkpoints(cfg.run_dir / "checkpoints")] == ["iter_00000002.pth",
                                                                                "iter_00000004.pth"]
    val = read_log(cfg.run_dir, "val")
    assert len(val) == 3 and read_log(cfg.run_dir, "run")[0]["world_size"] == 2
    # the sharded, reduced validation equals a single-process evaluation of the same (EMA) weights
    ema = build_model("cplir", **cfg.model.args)
    ema.load_state_dict(torch.load(tmp_path / "rank0_ema.pt", weights_only=True))
    single = flatten(evaluate(ema.eval(), build_test_sets(cfg), cfg.eval.protocol, cfg.eval.crop_border,
                              cfg.eval.pad_multiple))
    for key in ("psnr", "ssim", "l1", "denoise/psnr"):
        assert val[-1][key] == pytest.approx(single[key], rel=1e-6), key
