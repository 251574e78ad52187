"""Engine pieces: LR schedule, resumable sampling, atomic checkpoints, EMA, batched prompt negatives."""

import math
from pathlib import Path

import pytest
import torch

from cplir.engine.checkpoint import (FORMAT, atomic_save, checkpoint_name, list_checkpoints,
                                     load_training_checkpoint, prune_checkpoints, resolve_resume)
from cplir.engine.ema import ModelEMA
from cplir.engine.prompt_negatives import draw_negative_choices, prompt_negatives_batched, prompt_negatives_naive
from cplir.engine.schedule import (cosine_restart_lr, learning_rate, multistep_lr, periodic_cosine_lr,
                                   warmup_cosine_lr)
from cplir.errors import CheckpointError
from cplir.models import build_model


def test_warmup_then_cosine_closed_form():
    lr = [warmup_cosine_lr(i, 2e-4, 10, 110, 0.0) for i in range(120)]
    assert lr[0] == pytest.approx(2e-5)  # no epoch at lr 0, unlike the published Lightning schedule
    assert lr[9] == pytest.approx(2e-4)
    assert all(a < b for a, b in zip(lr[:9], lr[1:10]))
    assert lr[10] == pytest.approx(2e-4)
    assert lr[60] == pytest.approx(1e-4)  # half way through the cosine
    assert lr[35] == pytest.approx(1e-4 * (1 + math.cos(math.pi * 25 / 100)))
    assert lr[110] == pytest.approx(0.0, abs=1e-12) and lr[119] == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine_lr(50, 1.0, 0, 100, 0.1) == pytest.approx(0.55)


def test_cosine_restart_closed_form():
    """BasicSR's CosineAnnealingRestartLR: cycle i spans (c_{i-1}, c_i], the minimum is reached at c_i and the
    restart happens at c_i + 1 with the cycle's weight; after the last cycle the lr stays at eta_min."""
    def closed(t, start, period, weight):
        return 0.1 + weight * 0.5 * 0.9 * (1 + math.cos(math.pi * (t - start) / period))

    lr = [cosine_restart_lr(t, 1.0, [10, 20], [1.0, 0.5], min_lr=0.1) for t in range(35)]
    assert lr[0] == pytest.approx(1.0) and lr[5] == pytest.approx(0.55) and lr[10] == pytest.approx(0.1)
    for t in range(0, 11):
        assert lr[t] == pytest.approx(closed(t, 0, 10, 1.0))
    for t in range(11, 31):
        assert lr[t] == pytest.approx(closed(t, 10, 20, 0.5))
    assert lr[11] == pytest.approx(0.1 + 0.45 * 0.5 * (1 + math.cos(math.pi / 20)))  # the restart, at half height
    assert lr[30] == pytest.approx(0.1) and lr[31:] == [0.1] * 4
    # BasicSR's linear warm-up replaces the first values; the cycles keep counting from iteration 0
    warm = [cosine_restart_lr(t, 1.0, [10], [1.0], warmup_iters=4) for t in range(6)]
    assert warm[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0]) and warm[5] == pytest.approx(0.5)


def torch_schedule(make, steps: int, lr: float = 2e-4):
    """The lr torch's scheduler ``make(optimizer)`` gives at step counts 0 .. steps-1."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler, out = make(optimizer), []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_cosine_annealing_is_torchs_periodic_cosine():
    """The MCLIR FFANet schedule: torch's CosineAnnealingLR keeps going past T_max (down, up, down, ...)."""
    expected = torch_schedule(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=1e-8), 90)
    got = [periodic_cosine_lr(t, 2e-4, 20, 1e-8) for t in range(90)]
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert got[20] == pytest.approx(1e-8) and got[40] == pytest.approx(2e-4) and got[60] == pytest.approx(1e-8)


def test_multistep_is_torchs_multistep_lr():
    expected = torch_schedule(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12, 13], gamma=0.5), 20)
    assert [multistep_lr(t, 2e-4, [12, 5, 13], 0.5) for t in range(20)] == pytest.approx(expected, rel=1e-12)
    assert multistep_lr(4, 1.0, [5], 0.1) == 1.0 and multistep_lr(5, 1.0, [5], 0.1) == pytest.approx(0.1)
    assert [multistep_lr(t, 1.0, [5], 0.1, warmup_iters=2) for t in (0, 1, 2)] == pytest.approx([0.5, 1.0, 1.0])


def test_learning_rate_follows_the_configured_schedule():
    from cplir.config import load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    cfg = load_config(configs / "cpl-weatherbench.yaml")
    o = cfg.train.optim
    assert (o.schedule, o.periods, o.min_lr, o.warmup_iters) == ("cosine_restart", [250_000] * 4, 1e-7, 0)
    lrs = {t: learning_rate(t, o, cfg.train.iterations) for t in (0, 125_000, 250_000, 250_001, 999_999)}
    assert lrs[0] == pytest.approx(2e-4) and lrs[250_000] == pytest.approx(1e-7)
    assert lrs[125_000] == pytest.approx(1e-7 + 0.5 * (2e-4 - 1e-7))
    assert lrs[250_001] == pytest.approx(2e-4, rel=1e-6) and lrs[999_999] < 1e-6
    base = load_config(configs / "promptir-three-task.yaml")
    assert learning_rate(100, base.train.optim, base.train.iterations) == pytest.approx(
        warmup_cosine_lr(100, 2e-4, 66_765, 667_650, 0.0))



def test_epoch_sampler_resume_is_the_tail_of_the_epoch():
    from cplir.data.datasets import EpochSampler

    data = list(range(23))
    full = [list(EpochSampler(data, seed=3, rank=r, world_size=2, epoch=1)) for r in range(2)]
    assert len(full[0]) == len(full[1]) == 11 and not {i for _, i in full[0]} & {i for _, i in full[1]}
    sampler = EpochSampler(data, seed=3, rank=1, world_size=2)
    sampler.set_epoch(1, start=4)
    assert list(sampler) == full[1][4:] and len(sampler) == 7
    sampler.set_epoch(2)
    assert len(sampler) == 11 and [i for _, i in sampler] != [i for _, i in full[1]]


def test_atomic_save_survives_a_kill(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / checkpoint_name(10)
    atomic_save({"format": FORMAT, "iteration": 10}, path)

    def killed(obj, handle):
        handle.write(b"partial")
        raise KeyboardInterrupt  # the process dies in the middle of writing

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"format": FORMAT, "iteration": 20}, path)
    monkeypatch.undo()
    assert load_training_checkpoint(path)["iteration"] == 10
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_checkpoint_listing_pruning_and_resume(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    assert resolve_resume("auto", tmp_path / "run") is None
    for it in (5, 100, 20):
        atomic_save({"format": FORMAT, "iteration": it}, folder / checkpoint_name(it))
    (folder / ".iter_00000200.pth.abc.tmp").write_bytes(b"junk")
    assert [p.name for p in list_checkpoints(folder)] == [checkpoint_name(i) for i in (5, 20, 100)]
    assert resolve_resume("auto", tmp_path / "run").name == checkpoint_name(100)
    prune_checkpoints(folder, keep=2)
    assert [p.name for p in list_checkpoints(folder)] == [checkpoint_name(i) for i in (20, 100)]
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        resolve_resume(str(tmp_path / "missing.pth"), tmp_path)
    torch.save({"params": {}}, tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match="not a cplir training checkpoint"):
        load_training_checkpoint(tmp_path / "weights.pth")


def test_ema_update():
    net = torch.nn.Linear(3, 2)
    ema = ModelEMA(net, decay=0.9)
    before = ema.module.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.module.weight, 0.9 * before + 0.1 * net.weight)
    assert not ema.module.weight.requires_grad


@pytest.mark.parametrize("k", [1, 2])
def test_batched_negatives_equal_naive(tiny_kwargs, k):
    torch.manual_seed(0)
    net = build_model("cplir", **tiny_kwargs, top_k=k)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.rand(3, 3, 16, 24)
    draws = draw_negative_choices(4, 3, 3, torch.Generator().manual_seed(5))
    _, feats = net(x, return_features=True)
    batched = prompt_negatives_batched(net, feats, x, draws)
    naive = prompt_negatives_naive(net, x, draws)
    assert batched.shape == (4, 3, 3, 16, 24)
    torch.testing.assert_close(batched, naive, rtol=1e-5, atol=1e-5)
    for per_pass in (1, 3):  # the negatives may also be decoded a few at a time (faster on the CPU)
        torch.testing.assert_close(prompt_negatives_batched(net, feats, x, draws, per_pass), naive,
                                   rtol=1e-5, atol=1e-5)
    assert not batched.requires_grad
    # each negative is a different image: the draws differ per negative
    assert (batched[0] - batched[1]).abs().max() > 1e-4
