"""MCLIR where its paper used it, through the Trainer: SPN on a super-resolution network (whose state holds integer
buffers), and the exact resume of a super-resolution run with its negative-model bank."""

import pytest
import torch

from cplir.engine.checkpoint import load_training_checkpoint
from cplir.engine.distributed import DistInfo
from cplir.engine.run_log import read_log
from cplir.engine.trainer import Trainer, run_training
from test_sr_data import sr_tree
from trainer_fixtures import interrupt_then_resume, tiny_config

SCALE = 2
TINY_SWINIR = {"upscale": SCALE, "img_size": 8, "window_size": 4, "embed_dim": 6, "depths": [2], "num_heads": [2]}
SPN = {"enabled": True, "vgg_weights": "random", "intervals": [1, 2], "decays": [0.5], "layers": ["relu1_2"],
       "layer_weights": [1.0]}


@pytest.fixture(scope="module")
def sr_root(tmp_path_factory):
    """Four 24x20 HR images with their 12x10 LR files (``HR/``, ``LR_bicubic/X2/``)."""
    return sr_tree(tmp_path_factory.mktemp("sr"), ["0001", "0002", "0003", "0004"], SCALE)


def sr_config(root, out, **sections):
    source = {"benchmark": "sr_folder", "root": str(root), "options": {"scale": SCALE}}
    return tiny_config(root, out, model={"name": "swinir_light_x4", "args": dict(TINY_SWINIR)},
                       data__train=source, data__test=[dict(source, split="test")], data__crop_size=16,
                       eval__protocol="basicsr_y", eval__crop_border=SCALE, eval__pad_multiple=1, **sections)


@pytest.mark.slow
def test_spn_trains_a_super_resolution_network(sr_root, tmp_path):
    cfg = sr_config(sr_root, tmp_path, loss__spn=SPN, train__iterations=2, train__val_every=2, train__save_every=2)
    trainer = Trainer(cfg, DistInfo(), progress=False)
    integer = {name for name, b in trainer.net.named_buffers() if not b.is_floating_point()}
    assert integer  # SwinIR's relative position index: the bank must copy, not blend, it
    batch = next(trainer.batches())
    assert batch["gt"].shape[-1] == SCALE * batch["lq"].shape[-1] == 16
    negatives = trainer.objective["spn"].bank.forward_all(batch["lq"])
    assert all(n.shape == batch["gt"].shape for n in negatives)  # negatives are SR outputs too
    trainer.logger.close()

    run_training(cfg, DistInfo(), progress=False)
    train = read_log(cfg.run_dir, "train")
    assert [r["iteration"] for r in train] == [1, 2]
    for r in train:
        assert r["spn_neg"] > 0 and r["loss"] == pytest.approx(r["l1"] + r["spn"], rel=1e-5)
    val = read_log(cfg.run_dir, "val")[-1]
    assert val["protocol"] == "basicsr_y" and val["psnr"] > 0
    state = load_training_checkpoint(cfg.run_dir / "checkpoints" / "iter_00000002.pth")
    bank = state["objective"]["spn"]
    for i in range(2):
        for name in integer:
            assert torch.equal(bank[f"models.{i}.{name}"], state["model"][name])


@pytest.mark.slow
def test_a_resumed_super_resolution_run_is_bit_identical(sr_root, tmp_path, monkeypatch):
    """4 iterations straight vs 2, an interruption, and a resume for the other 2: every saved tensor equal."""
    extra = {"loss__spn": SPN, "train__iterations": 4, "train__val_every": 0, "train__save_every": 2}
    whole = sr_config(sr_root, tmp_path / "whole", **extra)
    run_training(whole, DistInfo(), progress=False)

    cut = sr_config(sr_root, tmp_path / "cut", **extra)
    assert interrupt_then_resume(cut, 2, monkeypatch) == [1, 2]

    a, b = (load_training_checkpoint(cfg.run_dir / "checkpoints" / "iter_00000004.pth") for cfg in (whole, cut))
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][key], b[part][key]) for key in a[part]), part
    bank_a, bank_b = a["objective"]["spn"], b["objective"]["spn"]
    assert bank_a.keys() == bank_b.keys() and all(torch.equal(bank_a[k], bank_b[k]) for k in bank_a)
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for index, moments in a["optimizer"]["state"].items():
        assert all(torch.equal(value, b["optimizer"]["state"][index][name]) for name, value in moments.items())
    losses = [{r["iteration"]: r["loss"] for r in read_log(cfg.run_dir, "train")} for cfg in (whole, cut)]
    assert losses[0] == losses[1]
