"""Import published and project checkpoints into a model.

Accepted files (all read with ``torch.load(weights_only=True)``):
* PromptIR's PyTorch Lightning ``.ckpt``: weights under ``state_dict``, keys prefixed ``net.``, with six layers
  the forward pass never uses (dropped here);
* BasicSR / CPLIR ``.pth``: weights under ``params_ema`` (preferred) or ``params``;
* this project's training checkpoints (``ema`` preferred over ``model``) and exported weights;
* a plain state dict, ``.safetensors`` included (needs the ``safetensors`` package).
"""

import json
import os
import pickle
import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from cplir.errors import CheckpointError
from cplir.file_kinds import PICKLE, PYTORCH_ZIP, SAFETENSORS, file_kind

# Layers of the published PromptIR that are built but never used in its forward pass.
DEAD_PROMPTIR_LAYERS = ("chnl_reduce1.", "chnl_reduce2.", "chnl_reduce3.",
                        "reduce_noise_channel_1.", "reduce_noise_channel_2.", "reduce_noise_channel_3.")
# Where the weights sit inside the known container formats, in order of preference.
CONTAINER_KEYS = ("params_ema", "params", "ema", "model", "state_dict")
PREFIXES = ("net.", "module.", "_orig_mod.")


def load_checkpoint_file(path: Path):
    """Read a checkpoint file safely (``weights_only``), choosing the reader by the file's content (a safetensors
    file named ``.pth`` still loads); clear errors for missing, foreign, corrupt or unsafe files."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CheckpointError(f"checkpoint {path} {what}; give the path of a checkpoint file")
    kind = file_kind(path)
    if kind == SAFETENSORS:
        return _read_safetensors(path)
    if kind not in (PYTORCH_ZIP, PICKLE):
        raise CheckpointError(f"{path} is {kind}, not a PyTorch checkpoint or safetensors file; check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        what = f" (it holds a {found.group(1)})" if found else ""
        raise CheckpointError(f"{path} holds Python objects beyond tensors and plain containers{what}, which are "
                              "not loaded because unpickling them could run code; re-save just its weights (a "
                              "state dict of tensors) with the program that wrote it") from None
    except Exception as err:  # a corrupt stream fails in many ways inside torch's unpickler
        raise CheckpointError(f"cannot read checkpoint {path}: it looks like {kind} but is truncated or damaged "
                              f"({str(err).splitlines()[0][:200]}); copy or download it again") from err


def _read_safetensors(path: Path):
    """Tensors of a safetensors file; a cplir model file (spec in the metadata) comes back in the same shape as a
    ``.pth`` model file: ``{"format", "spec", "calibration", "state_dict"}``."""
    try:
        from safetensors import safe_open
    except ImportError as err:
        raise CheckpointError(f"{path} is a safetensors file: install it with `pip install safetensors`") from err
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read safetensors checkpoint {path}: {err}") from err
    if metadata.get("format", "").startswith("cplir-model") and metadata.get("spec"):
        try:
            spec = json.loads(metadata["spec"])
            calibration = json.loads(metadata["calibration"]) if metadata.get("calibration") else None
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{path}: the model description in its metadata is damaged ({err})") from err
        return {"format": metadata["format"], "spec": spec, "calibration": calibration, "state_dict": tensors}
    return tensors


def read_state_dict(source: Union[str, os.PathLike, Mapping]) -> Dict[str, torch.Tensor]:
    """A plain ``{key: tensor}`` state dict from a checkpoint path or an already loaded object.

    Unwraps the known containers, strips ``net.`` / ``module.`` / ``_orig_mod.`` prefixes and drops PromptIR's
    unused layers.
    """
    obj = load_checkpoint_file(Path(source)) if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint holds a {type(obj).__name__}, not a dictionary of weights")
    for key in CONTAINER_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor: this is "
                                  "not a weights file this project knows (expected a state dict, a PromptIR "
                                  "Lightning .ckpt, a BasicSR .pth or a cplir checkpoint)")
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if not key.startswith(DEAD_PROMPTIR_LAYERS):
            state[key] = value
    return state


def _recorded_model_name(obj) -> Optional[str]:
    """The model name a cplir model file (``spec``) or training checkpoint (``config.model``) records."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("format"), str):
        return None
    if obj["format"].startswith("cplir-model") and isinstance(obj.get("spec"), Mapping):
        return obj["spec"].get("name")
    if obj["format"].startswith("cplir-checkpoint"):
        model_cfg = (obj.get("config") or {}).get("model") if isinstance(obj.get("config"), Mapping) else None
        return model_cfg.get("name") if isinstance(model_cfg, Mapping) else None
    return None


def load_weights(model: nn.Module, source: Union[str, os.PathLike, Mapping]) -> nn.Module:
    """Load a checkpoint (see module docstring) into ``model`` strictly; returns the model.

    Raises :class:`CheckpointError` naming missing and unexpected keys and mismatched shapes, and when a cplir
    model file or training checkpoint records another model than ``model.spec`` names: PromptIR (dense) and CPL
    (sparse) weights have identical keys, so the record is the only way to tell.
    """
    obj = load_checkpoint_file(Path(source)) if isinstance(source, (str, os.PathLike)) else source
    recorded, built = _recorded_model_name(obj), getattr(model, "spec", {}).get("name")
    if recorded and built and recorded != built:
        raise CheckpointError(
            f"checkpoint{f' {source}' if isinstance(source, (str, os.PathLike)) else ''} holds a {recorded!r} "
            f"model, not the {built!r} model it is being loaded into; cplir.models.load_model(path) rebuilds "
            f"{recorded!r}, or pass its state dict explicitly to load the weights into {built!r} anyway")
    state = read_state_dict(obj)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                         for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or wrong_shape:
        where = f" from {source}" if isinstance(source, (str, os.PathLike)) else ""
        parts = [f"checkpoint{where} does not fit {type(model).__name__}"]
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatches", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:10]) + (f", ... ({len(keys) - 10} more)" if len(keys) > 10 else "")
                parts.append(f"{len(keys)} {title}: {shown}")
        parts.append("check that the model name and its settings (dim, num_blocks, num_prompts, ...) match "
                     "the ones the checkpoint was trained with")
        raise CheckpointError("; ".join(parts))
    model.load_state_dict(state)
    return model
