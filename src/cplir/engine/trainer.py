"""The training loop: one plain PyTorch loop, iteration based, for every setting of the papers.

The objective is the sum of the configured terms of :mod:`cplir.engine.objective`, computed in
:meth:`Trainer.training_step` on one restoration of the batch:
* ``l1``: L1 reconstruction (CPL Eq. 4, MCLIR's L_rec); ``ssim``: 1 − SSIM (IDT's reconstruction loss);
* ``cpr``: Contrastive Prompt Regularisation ``α·(L_pos − L_neg)`` with m mismatched-prompt negatives (CPL Eq. 5–8);
* ``spn``: the Self-Prior guided Negative loss ``−λ·mean_i ||φ(I) − φ(neg_i(x))||₁`` of model contrastive learning.
Single-process runs are the world-size-1 case of the distributed code path. :func:`run_training` holds the run
folder's lock (:mod:`cplir.engine.run_lock`) while it trains.
"""

import sys
import time
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from cplir.analysis.routing import routing_calibration
from cplir.config import Config, dump_config, to_dict
from cplir.data.benchmarks import load_benchmark
from cplir.data.datasets import TrainingMix, build_train_loader, default_repeats
from cplir.engine.checkpoint import (FORMAT, atomic_save, check_entries, checkpoint_name, list_checkpoints,
                                     load_training_checkpoint, prune_checkpoints, remove_stale_temporaries)
from cplir.engine.distributed import DistInfo
from cplir.engine.evaluation import build_test_sets, evaluate, flatten
from cplir.engine.ema import ModelEMA
from cplir.engine.objective import StepInputs, build_objective
from cplir.engine.resume import check_resume_config
from cplir.engine.run_lock import hold_run_folder
from cplir.engine.run_log import RunLogger
from cplir.engine.schedule import learning_rate
from cplir.errors import CheckpointError, CplirError
from cplir.models import build_model, load_weights
from cplir.outputs import check_free_space, prepare_output_dir
from cplir.seeding import torch_generator


class TrainingDiverged(CplirError):
    """The loss became NaN or infinite."""


class Trainer:
    """Builds everything a run needs from a :class:`Config` and trains it.

    Args:
        cfg: the resolved configuration.
        dist: this process's rank, world size and device (:func:`cplir.engine.distributed.init_distributed`).
        resume: a training checkpoint to continue from (None: start fresh).
        progress: show a progress bar (rank 0 only).
        allow_config_change: resume even when the config differs from the checkpoint's in what shapes training
            (:mod:`cplir.engine.resume`); both configs are kept.
    """

    def __init__(self, cfg: Config, dist: DistInfo = DistInfo(), resume: Optional[Path] = None,
                 progress: bool = True, allow_config_change: bool = False):
        self.cfg, self.dist, self.device = cfg, dist, dist.device
        self.run_dir = cfg.run_dir
        self.progress = progress and dist.is_main
        state = self._check_start(resume, allow_config_change)  # before anything is built or written
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        self.net = build_model(cfg.model.name, **cfg.model.args).to(self.device)
        # find_unused_parameters stays False unless the network declares parameters its forward never uses
        # (FSNet's side-output heads): top-k routing gathers from one prompt tensor per block, so the unselected
        # components get exact zero gradients and every parameter takes part in each step. A parameter that
        # really goes unused is then a bug, and DDP reports it instead of hiding it.
        self.model = (DistributedDataParallel(self.net, device_ids=[dist.local_rank] if self.device.type == "cuda"
                                              else None,
                                              find_unused_parameters=getattr(self.net, "unused_in_forward", False))
                      if dist.distributed else self.net)
        # The channels-last LayerNorm output makes depthwise (C, 1, 3, 3) weight gradients come back with strides
        # that differ from DDP's bucket only along the size-1 axis: the same memory layout, a benign warning.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        t = cfg.train
        self.ema = ModelEMA(self.net, t.ema_decay) if t.ema_decay > 0 else None
        o = t.optim
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=o.lr, betas=tuple(o.betas),
                                           weight_decay=o.weight_decay)
        if t.amp == "fp16" and self.device.type != "cuda":
            raise CplirError("train.amp=fp16 needs a CUDA device; use bf16 on the CPU")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=t.amp == "fp16")
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[t.amp]

        self.objective = build_objective(cfg, self.net).to(self.device)
        removed = self._prepare_run_folder()

        self.train_set = self._build_train_set()
        d = cfg.data
        self.loader = build_train_loader(self.train_set, d.batch_size, d.num_workers, cfg.seed, dist.rank,
                                         dist.world_size)
        self.batches_per_epoch = len(self.loader)
        self.val_sets = build_test_sets(cfg, cfg.data.max_val_images)
        self.iteration = 0
        self.last_per_task: Dict[str, Dict[str, float]] = {}
        self.calibration: Optional[dict] = None  # per-task prompt selection, measured by the final validation
        self.logger = RunLogger(self.run_dir, enabled=dist.is_main)
        if state is not None:
            self.load_state_dict(state, resume)
            self.logger.truncate_after(self.iteration)
        else:
            self.logger.start_fresh()
        if dist.is_main:
            self._write_config()
            self.logger.log("run", self.iteration, {}, feature_labels=self.feature_labels(),
                            world_size=dist.world_size, device=str(self.device), resumed_from=str(resume or ""),
                            config_changes={key: [old, new] for key, old, new in self.config_changes},
                            removed_temporaries=[str(path) for path in removed])

    # --- the run folder ------------------------------------------------------------------------------------------
    def _check_start(self, resume: Optional[Path], allow_config_change: bool) -> Optional[dict]:
        """The checkpoint to resume from, its entries and config checked against ``cfg``; a fresh start is
        refused in a folder that holds an earlier run's checkpoints."""
        self.config_changes = []
        if resume is None:
            if list_checkpoints(self.run_dir / "checkpoints"):
                raise CplirError(f"run folder {self.run_dir} already holds checkpoints of an earlier run: continue it "
                                 "with --resume auto, or start a new one under another name (--set name=...)")
            return None
        state = load_training_checkpoint(resume)
        check_entries(state, resume)
        self.config_changes = check_resume_config(state["config"], self.cfg, allow_config_change)
        return state

    def _prepare_run_folder(self) -> List[Path]:
        """Rank 0: the checkpoint folder writable with room for a checkpoint; the temporaries of an interrupted
        checkpoint write removed (returned)."""
        if not self.dist.is_main:
            return []
        folder = prepare_output_dir(self.run_dir / "checkpoints", "checkpoint folder")
        # A checkpoint: model, EMA, objective state, and AdamW's two moments per parameter (not allocated yet).
        weights = _tensor_bytes(self.net.state_dict())
        params = sum(p.numel() * p.element_size() for p in self.net.parameters())
        objective = _tensor_bytes([term.checkpoint_state() for term in self.objective.values()])
        check_free_space(folder, weights * (1 + (self.ema is not None)) + 2 * params + objective, "a checkpoint")
        removed = remove_stale_temporaries(folder)
        if removed:
            print(f"note: removed {len(removed)} temporary file(s) of an interrupted checkpoint write in {folder}",
                  file=sys.stderr)
        return removed

    def _write_config(self) -> None:
        """``config.yaml`` of the run; a resume that changed the config keeps the previous one beside it."""
        path = self.run_dir / "config.yaml"
        if self.config_changes and path.is_file():
            path.rename(path.with_name(f"config.until-iter_{self.iteration:08d}.yaml"))
        dump_config(self.cfg, path)

    # --- data ----------------------------------------------------------------------------------------------------
    def _build_train_set(self) -> TrainingMix:
        d = self.cfg.data
        records = load_benchmark(d.train.benchmark, d.train.root, d.train.split, **d.train.options)
        repeats = default_repeats(d.train.benchmark, records, d.repeats)
        return TrainingMix(records, repeats=repeats, crop_size=d.crop_size, augment=True, seed=self.cfg.seed)

    def batches(self) -> Iterator[dict]:
        """Training batches from the current iteration on, epoch after epoch (a resumed run skips the batches
        of its epoch it has already trained on)."""
        epoch, offset = divmod(self.iteration, self.batches_per_epoch)
        while True:
            self.loader.sampler.set_epoch(epoch, start=offset * self.cfg.data.batch_size)
            yield from self.loader
            epoch, offset = epoch + 1, 0

    # --- one step ------------------------------------------------------------------------------------------------
    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def training_step(self, lq: torch.Tensor, gt: torch.Tensor) -> Dict[str, float]:
        """One optimisation step on a batch (B, C, H, W); returns every loss term and diagnostic for logging."""
        self.model.train()
        lr = learning_rate(self.iteration, self.cfg.train.optim, self.cfg.train.iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        needs_features = any(term.needs_features for term in self.objective.values())
        with self.autocast():
            if needs_features:
                restored, feats = self.model(lq, return_features=True)
            else:
                restored, feats = self.model(lq), None
            inputs = StepInputs(lq, gt, restored.float(), feats, self.net, self.iteration,
                                torch_generator(self.cfg.seed, self.dist.rank, self.iteration))
            terms, logged = {}, {}
            for name, term in self.objective.items():  # l1 (Eq. 4), ssim, cpr (Eq. 5-8), spn (MCLIR Eq. 3), ...
                out = term(inputs)
                terms[name] = out.pop(name)
                logged.update({k: v.item() for k, v in out.items()})
        total = sum(terms.values())
        if not torch.isfinite(total):
            saved = list_checkpoints(self.run_dir / "checkpoints")
            advice = (f"the last checkpoint, {saved[-1]}, is intact: lower the learning rate or disable amp and "
                      "resume from it" if saved else "no checkpoint was saved yet: lower the learning rate or "
                      "disable amp and start again")
            raise TrainingDiverged(f"the loss became {total.item()} at iteration {self.iteration + 1} "
                                   f"({', '.join(f'{k}={v.item():.4g}' for k, v in terms.items())}); {advice}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.train.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            logged["grad_norm"] = float(nn.utils.clip_grad_norm_(self.net.parameters(),
                                                                 self.cfg.train.optim.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        if self.ema is not None:
            self.ema.update(self.net)
        for term in self.objective.values():
            term.after_step(self.iteration, self.net)
        return {"loss": total.item(), **{k: v.item() for k, v in terms.items()}, **logged, "lr": lr}

    # --- the loop ------------------------------------------------------------------------------------------------
    def fit(self) -> Dict[str, float]:
        """Train until ``train.iterations``; validates and saves on schedule. Returns the last validation."""
        t = self.cfg.train
        last_val = {}
        if t.val_every and self.iteration == 0 and self.val_sets:
            last_val = self.validate()
        bar = tqdm(total=t.iterations, initial=self.iteration, disable=not self.progress, desc=self.cfg.name,
                   unit="it", dynamic_ncols=True)
        window: List[Dict[str, float]] = []
        start = time.perf_counter()
        try:
            for batch in self.batches():
                if self.iteration >= t.iterations:
                    break
                terms = self.training_step(batch["lq"].to(self.device, non_blocking=True),
                                           batch["gt"].to(self.device, non_blocking=True))
                window.append(terms)
                bar.update(1)
                if self.iteration % t.log_every == 0 or self.iteration == t.iterations:
                    mean = {k: sum(w[k] for w in window) / len(window) for k in window[-1]}
                    mean["it_per_s"] = len(window) / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in mean.items() if k in ("loss", "l1", "cpr", "spn")})
                    # after a resume the first window is shorter: each record says how many iterations it averages
                    self.logger.log("train", self.iteration, mean, iterations_averaged=len(window))
                    window, start = [], time.perf_counter()
                done = self.iteration == t.iterations
                if self.val_sets and ((t.val_every and self.iteration % t.val_every == 0) or done):
                    last_val = self.validate()
                    bar.set_postfix_str(f"val psnr {last_val.get('psnr', float('nan')):.2f}")
                if (t.save_every and self.iteration % t.save_every == 0) or done:
                    self.save()
        finally:
            bar.close()
        return last_val

    def validate(self) -> Dict[str, float]:
        """PSNR/SSIM (the configured protocol) and L1 per task on the test sets, EMA weights when enabled."""
        model = self.ema.module if self.ema is not None else self.net
        model.eval()
        e = self.cfg.eval
        per_task = evaluate(model, self.val_sets, e.protocol, e.crop_border, e.pad_multiple, self.device,
                            self.dist, self.autocast, num_workers=self.cfg.data.num_workers, pad_mode=e.pad_mode,
                            tile=e.tile, tile_overlap=e.tile_overlap)
        self.last_per_task = per_task
        if self.iteration >= self.cfg.train.iterations and self.dist.is_main:
            self.calibration = routing_calibration(model, self.val_sets, self.device, e.pad_multiple, e.pad_mode)
        results = flatten(per_task)
        self.logger.log("val", self.iteration, results, protocol=e.protocol,
                        weights="ema" if self.ema is not None else "model")
        return results

    # --- checkpoints ---------------------------------------------------------------------------------------------
    def feature_labels(self) -> List[str]:
        """How the loss terms' feature networks differ from the papers' (random VGG weights, a download-free
        feature space), for logs and reports."""
        return [label for term in self.objective.values() for label in term.feature_labels()]

    def state_dict(self) -> dict:
        return {
            "format": FORMAT,
            "iteration": self.iteration,
            "config": to_dict(self.cfg),
            "model": self.net.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "calibration": self.calibration,
            "objective": {name: term.checkpoint_state() for name, term in self.objective.items()
                          if term.checkpoint_state() is not None},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def load_state_dict(self, state: dict, source: str = "the checkpoint") -> None:
        """Restore a training state (entries checked by :func:`cplir.engine.checkpoint.check_entries`)."""
        saved = state["objective"]
        stateful = {name for name, term in self.objective.items() if term.checkpoint_state() is not None}
        if (state["ema"] is None) != (self.ema is None) or set(saved) != stateful:
            raise CheckpointError("the checkpoint was trained with a different EMA / loss setting than this "
                                  f"config (checkpoint: ema {state['ema'] is not None}, stateful terms "
                                  f"{sorted(saved)}; config: ema {self.ema is not None}, {sorted(stateful)}); "
                                  "resume with the config saved in its run folder")
        parts = [("model", lambda: load_weights(self.net, state["model"])),
                 ("ema", lambda: self.ema is None or load_weights(self.ema.module, state["ema"])),
                 *((f"objective.{name}", lambda name=name: self.objective[name].restore_state(saved[name]))
                   for name in sorted(stateful)),
                 ("optimizer", lambda: self.optimizer.load_state_dict(state["optimizer"])),
                 ("scaler", lambda: self.scaler.load_state_dict(state["scaler"])),
                 ("rng", lambda: torch.set_rng_state(state["rng"]["torch"]))]
        for part, restore in parts:
            try:
                restore()
            except CheckpointError as err:
                raise CheckpointError(f"{source}: its {part!r} entry: {err}") from err
            except Exception as err:  # a damaged entry fails inside torch in many ways
                raise CheckpointError(f"{source}: its {part!r} entry does not fit this run ({type(err).__name__}: "
                                      f"{err}); it is damaged, or the config differs from the run's") from err
        if state["rng"].get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.iteration = state["iteration"]
        self.calibration = state.get("calibration")

    def save(self) -> Optional[Path]:
        """Write ``run_dir/checkpoints/iter_N.pth`` atomically (rank 0) and prune old ones."""
        if not self.dist.is_main:
            return None
        folder = self.run_dir / "checkpoints"
        path = atomic_save(self.state_dict(), folder / checkpoint_name(self.iteration))
        prune_checkpoints(folder, self.cfg.train.keep_checkpoints)
        return path


def run_training(cfg: Config, dist: DistInfo, resume: Optional[Path] = None, progress: bool = True,
                 allow_config_change: bool = False) -> dict:
    """Train ``cfg`` to the end, holding its run folder; returns the final validation metrics."""
    with hold_run_folder(cfg.run_dir, dist):
        trainer = Trainer(cfg, dist, resume=resume, progress=progress, allow_config_change=allow_config_change)
        try:
            if trainer.iteration >= cfg.train.iterations:
                return trainer.validate() if trainer.val_sets else {}
            return trainer.fit()
        finally:
            trainer.logger.close()


def _tensor_bytes(obj) -> int:
    """Bytes of every tensor in a nested structure of dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0

