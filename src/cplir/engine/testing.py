"""`cplir test`: evaluate a checkpoint on the configured test sets and write the paper-style table.

The checkpoint knows its model: without ``--config`` a training checkpoint is tested with the config it was trained
with, and a ``--config`` describing another model is refused with both names (:func:`config_for_checkpoint`,
shared with the commands that read checkpoints). Results go next to the checkpoint unless ``--out`` says otherwise,
are written after each test set (a late failure loses nothing) and never replace earlier results without
``--overwrite``: ``results.json`` and ``results.csv`` (per task, with the degraded input's scores as a do-nothing
baseline) and ``per_image.csv``.
"""

import contextlib
from pathlib import Path
from typing import Optional, Sequence, Tuple

import torch

from cplir.config import Config, apply_overrides, config_from_dict, load_config, to_dict
from cplir.engine.distributed import init_distributed
from cplir.engine.evaluation import RESULT_FILES, build_test_sets, evaluate, format_table, write_results
from cplir.errors import CheckpointError, ConfigError
from cplir.metrics.lpips import build_lpips
from cplir.models import build_model, load_weights
from cplir.models.model_file import MODEL_FORMAT, TRAINING_FORMAT, assumed_model_note, infer_spec, read_model_file
from cplir.models.registry import resolved_arguments
from cplir.models.weights import load_checkpoint_file
from cplir.outputs import prepare_output_dir, refuse_existing


def config_for_checkpoint(checkpoint, config: Optional[str] = None, overrides: Sequence[str] = ()) -> Config:
    """The config to use ``checkpoint`` with: ``config`` (a YAML file) when given, else the config a training
    checkpoint carries; ``overrides`` (``--set``) applied to either. A model file or bare weights carry no data or
    evaluation settings, so they need ``config``."""
    if config is not None:
        return load_config(config, overrides)
    state = load_checkpoint_file(Path(checkpoint))
    if not isinstance(state, dict) or state.get("format") != TRAINING_FORMAT:
        kind = "a model file" if isinstance(state, dict) and state.get("format") == MODEL_FORMAT else "bare weights"
        raise ConfigError(f"{checkpoint} is {kind}: it carries no test sets or evaluation settings; pass --config")
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"training checkpoint {checkpoint} is damaged: its 'config' entry is missing; pass "
                              "--config")
    return config_from_dict(apply_overrides(state["config"], overrides))


def check_same_model(cfg: Config, spec: Optional[dict], checkpoint) -> None:
    """Refuse a checkpoint whose recorded model (``spec``) differs from the config's, in name or arguments (the
    defaults of the model's constructor filled in on both sides); ``spec`` None (bare weights) passes."""
    if spec is None:
        return
    mine = {"name": cfg.model.name, "args": resolved_arguments(cfg.model.name, cfg.model.args)}
    theirs = {"name": spec["name"], "args": resolved_arguments(spec["name"], spec.get("args") or {})}
    if mine == theirs:
        return
    differing = sorted(k for k in set(mine["args"]) | set(theirs["args"])
                       if mine["args"].get(k) != theirs["args"].get(k))
    detail = "" if mine["name"] != theirs["name"] else " with other arguments: " + ", ".join(
        f"{k} {theirs['args'].get(k)!r} in the checkpoint, {mine['args'].get(k)!r} in the config" for k in differing)
    raise CheckpointError(f"{checkpoint} holds a {theirs['name']!r} model but the config describes "
                          f"{mine['name']!r}{detail}; leave out --config to use the checkpoint's own, or pass the "
                          "config it was trained with")


def load_for_inference(cfg: Config, checkpoint, weights: str = "ema") -> Tuple[torch.nn.Module, str]:
    """The network of ``checkpoint`` in eval mode and which weights were read (``ema`` / ``model`` of a training
    checkpoint, ``params_ema`` / ``params`` of a BasicSR file, see
    :func:`cplir.models.model_file.read_model_file`): a model file or training checkpoint must hold the config's
    model (:func:`check_same_model`); a bare weights file is loaded into the config's model."""
    info = read_model_file(checkpoint, weights)
    check_same_model(cfg, info["spec"], checkpoint)
    if info["spec"] is None:  # published weights: say when their layout suggests another kind of prompts
        try:
            inferred = infer_spec(info["state_dict"], info.get("container", ""))["name"]
        except CheckpointError:
            inferred = cfg.model.name
        if inferred != cfg.model.name:
            print(f"note: {assumed_model_note(checkpoint, info.get('container', ''), inferred, cfg.model.name)}")
    model = build_model(cfg.model.name, **cfg.model.args)
    return load_weights(model, info["state_dict"]).eval(), info.get("container") or info["kind"]


def default_results_dir(checkpoint, weights: str = "ema") -> Path:
    """``<checkpoint folder>/<checkpoint name>-test`` (``-test-model`` for the raw weights)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent / f"{checkpoint.stem}-test{'' if weights == 'ema' else '-' + weights}"


def run_test(cfg: Config, checkpoint, out_dir: Optional[str] = None, save_images: bool = False,
             weights: Optional[str] = None, device: str = "auto", overwrite: bool = False) -> dict:
    """Score ``checkpoint`` on ``cfg``'s test sets (see the module docstring); ``weights`` None takes
    ``eval.weights`` of the config. Returns the per-task scores."""
    if not cfg.data.test:
        raise ConfigError("the config has no test sets (data.test is empty); add one or pass --set")
    e = cfg.eval
    weights = weights or e.weights
    dist = init_distributed(device)
    model, key = load_for_inference(cfg, checkpoint, weights)
    model = model.to(dist.device)
    out = Path(out_dir) if out_dir else default_results_dir(checkpoint, weights)
    if dist.is_main:
        prepare_output_dir(out, "results folder")
        refuse_existing(out, RESULT_FILES + (("images",) if save_images else ()), overwrite)
    lpips, lpips_note = build_lpips(e.lpips.net, e.lpips.backbone_weights, e.lpips.head_weights) \
        if e.lpips.enabled else (None, "")
    datasets = build_test_sets(cfg)
    extra = {"checkpoint": str(checkpoint), "weights": weights, "weights_key": key, "config": to_dict(cfg),
             "pad": {"multiple": e.pad_multiple, "mode": e.pad_mode},
             "tile": {"size": e.tile, "overlap": e.tile_overlap}, **({"lpips_net": e.lpips.net} if lpips else {})}
    done, rows, sets_done = {}, [], []

    def write(set_name: str, per_task: dict, set_rows: list) -> None:
        done.update(per_task)
        rows.extend(set_rows)
        sets_done.append(set_name)
        if dist.is_main:
            write_results(done, e.protocol, e.crop_border, out, lpips_note=lpips_note, rows=rows,
                          extra={**extra, "sets_done": sets_done, "complete": len(sets_done) == len(datasets)})

    per_task = evaluate(model, datasets, e.protocol, e.crop_border, e.pad_multiple, dist.device, dist,
                        contextlib.nullcontext, progress=dist.is_main, save_dir=out / "images" if save_images else None,
                        num_workers=cfg.data.num_workers, pad_mode=e.pad_mode, tile=e.tile,
                        tile_overlap=e.tile_overlap, lpips=lpips.to(dist.device) if lpips is not None else None,
                        baseline=True, on_set_done=write)
    if dist.is_main:
        print(f"weights: {key} of {checkpoint}")
        print(format_table(per_task, e.protocol, e.crop_border, lpips_note))
        print(f"wrote {out / 'results.json'}, results.csv and per_image.csv")
    return per_task
