"""Engine pieces: LR schedule, resumable sampling, atomic checkpoints, EMA, batched prompt negatives."""

import math

import pytest
import torch

from cplir.engine.checkpoint import (FORMAT, atomic_save, checkpoint_name, list_checkpoints,
                                     load_training_checkpoint, prune_checkpoints, resolve_resume)
from cplir.engine.ema import ModelEMA
from cplir.engine.prompt_negatives import draw_negative_choices, prompt_negatives_batched, prompt_negatives_naive
from cplir.engine.schedule import warmup_cosine_lr
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
