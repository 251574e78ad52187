"""Tiny paired data and configs for trainer tests (a module, so the DDP worker script can use it too)."""

from pathlib import Path

import numpy as np
from PIL import Image

from cplir.config import config_from_dict

TINY_MODEL = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "prompt_sizes": [8, 4, 4],
              "heads": [1, 1, 2, 2]}


def make_paired_tree(root: Path, n: int = 8, size: int = 32, seed: int = 0) -> Path:
    """``root/input`` (noisy) and ``root/target`` (smooth) PNG pairs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        clean = np.stack([np.sin(3 * xx + i), np.cos(2 * yy + i), xx * yy], -1) * 0.4 + 0.5
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
        for folder, img in (("input", noisy), ("target", clean)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray((img * 255).round().astype(np.uint8)).save(root / folder / f"img{i:02d}.png")
    return root


def tiny_config(data_root: Path, out: Path, **sections) -> "Config":  # noqa: F821
    source = {"benchmark": "paired_folder", "root": str(data_root), "options": {"task": "denoise"}}
    data = {"model": {"name": "cplir", "args": dict(TINY_MODEL)},
            "name": "tiny", "output_dir": str(out), "seed": 1,
            "data": {"train": source, "test": [dict(source, split="test")], "crop_size": 16, "batch_size": 2,
                     "num_workers": 0},
            "train": {"iterations": 6, "log_every": 1, "val_every": 3, "save_every": 3, "ema_decay": 0.9,
                      "optim": {"lr": 1e-3, "warmup_iters": 2}},
            "eval": {"protocol": "basicsr_rgb"}}
    for key, value in sections.items():
        node = data
        *parents, last = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return config_from_dict(data)


def trained_run(root: Path, **sections):
    """A tiny config under ``root`` trained for 3 iterations (no validation): (config, last checkpoint)."""
    from cplir.engine.distributed import DistInfo
    from cplir.engine.trainer import run_training

    cfg = tiny_config(make_paired_tree(root / "pairs"), root / "runs", **{"train__iterations": 3,
                                                                         "train__val_every": 0, **sections})
    run_training(cfg, DistInfo(), progress=False)
    return cfg, cfg.run_dir / "checkpoints" / "iter_00000003.pth"


def interrupt_then_resume(cfg, at_iteration: int, monkeypatch) -> list:
    """Train ``cfg`` until a KeyboardInterrupt when ``at_iteration`` iterations are done, then continue it with
    ``cplir train --resume auto``; returns the iterations the log held before the resume."""
    import pytest

    from cplir.cli import main
    from cplir.engine.distributed import DistInfo
    from cplir.engine.run_log import read_log
    from cplir.engine.trainer import Trainer, run_training

    original = Trainer.training_step

    def interrupted(self, lq, gt):
        if self.iteration == at_iteration:
            raise KeyboardInterrupt
        return original(self, lq, gt)

    monkeypatch.setattr(Trainer, "training_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, DistInfo(), progress=False)
    monkeypatch.undo()
    logged = [r["iteration"] for r in read_log(cfg.run_dir, "train")]
    assert main(["train", "--config", str(cfg.run_dir / "config.yaml"), "--resume", "auto", "--no-progress",
                 "--device", "cpu"]) == 0
    return logged
