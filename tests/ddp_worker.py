"""Launched by torchrun in test_trainer: trains a tiny config, then each rank saves its final weights."""

import sys
from pathlib import Path

import torch

from cplir.config import load_config
from cplir.engine.distributed import cleanup_distributed, init_distributed
from cplir.engine.trainer import Trainer

cfg = load_config(sys.argv[1])
dist = init_distributed("cpu")
trainer = Trainer(cfg, dist, progress=False)
trainer.fit()
torch.save(trainer.net.state_dict(), Path(sys.argv[2]) / f"rank{dist.rank}.pt")
torch.save(trainer.ema.module.state_dict(), Path(sys.argv[2]) / f"rank{dist.rank}_ema.pt")
cleanup_distributed()
