"""`cplir test`: evaluate a checkpoint on the configured test sets and write the paper-style table."""

import contextlib
from pathlib import Path
from typing import Optional, Tuple

import torch

from cplir.config import Config
from cplir.engine.distributed import init_distributed
from cplir.engine.evaluation import build_test_sets, evaluate, format_table, write_results
from cplir.errors import CheckpointError, ConfigError
from cplir.metrics.lpips import build_lpips
from cplir.models import build_model, load_weights
from cplir.models.model_file import assumed_model_note, infer_spec, read_model_file


def load_for_inference(cfg: Config, checkpoint, weights: str = "ema") -> Tuple[torch.nn.Module, str]:
    """The network of ``checkpoint`` in eval mode and which weights were read (``ema`` / ``model`` of a training
    checkpoint, ``params_ema`` / ``params`` of a BasicSR file, see
    :func:`cplir.models.model_file.read_model_file`): a model file or training checkpoint rebuilds its own model
    (refused when it is not the config's model); a bare weights file is loaded into the config's model."""
    info = read_model_file(checkpoint, weights)
    spec = info["spec"]
    if spec is not None and spec["name"] != cfg.model.name:
        raise CheckpointError(f"{checkpoint} holds a {spec['name']!r} model but the config describes "
                              f"{cfg.model.name!r}: test it with the config it was trained with (the run folder's "
                              "config.yaml)")
    if spec is None:  # published weights: say when their layout suggests another kind of prompts
        try:
            inferred = infer_spec(info["state_dict"], info.get("container", ""))["name"]
        except CheckpointError:
            inferred = cfg.model.name
        if inferred != cfg.model.name:
            print(f"note: {assumed_model_note(checkpoint, info.get('container', ''), inferred, cfg.model.name)}")
    model = build_model(cfg.model.name, **cfg.model.args)
    return load_weights(model, info["state_dict"]).eval(), info.get("container") or info["kind"]


def run_test(cfg: Config, checkpoint, out_dir: Optional[str] = None, save_images: bool = False,
             weights: Optional[str] = None, device: str = "auto") -> dict:
    """Score ``checkpoint`` on the config's test sets; ``weights`` None takes ``eval.weights`` of the config."""
    if not cfg.data.test:
        raise ConfigError("the config has no test sets (data.test is empty); add one or pass --set")
    e = cfg.eval
    weights = weights or e.weights
    dist = init_distributed(device)
    model, key = load_for_inference(cfg, checkpoint, weights)
    model = model.to(dist.device)
    lpips, lpips_note = build_lpips(e.lpips.net, e.lpips.backbone_weights, e.lpips.head_weights) \
        if e.lpips.enabled else (None, "")
    datasets = build_test_sets(cfg)
    out = Path(out_dir) if out_dir else cfg.run_dir / "test"
    per_task = evaluate(model, datasets, e.protocol, e.crop_border, e.pad_multiple, dist.device, dist,
                        contextlib.nullcontext, progress=True, save_dir=out / "images" if save_images else None,
                        num_workers=cfg.data.num_workers, pad_mode=e.pad_mode,
                        lpips=lpips.to(dist.device) if lpips is not None else None)
    print(f"weights: {key} of {checkpoint}")
    print(format_table(per_task, e.protocol, e.crop_border, lpips_note))
    extra = {"checkpoint": str(checkpoint), "weights": weights, "weights_key": key, "config": cfg.name,
             "pad": {"multiple": e.pad_multiple, "mode": e.pad_mode}}
    if lpips is not None:
        extra["lpips_net"] = e.lpips.net
    paths = write_results(per_task, e.protocol, e.crop_border, out, extra=extra, lpips_note=lpips_note)
    print(f"wrote {paths['json']} and {paths['csv']}")
    return per_task
