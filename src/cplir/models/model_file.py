"""Self-describing model files: weights plus how to build the network, so a file restores without a config.

:func:`save_model` writes ``.safetensors`` (the spec and calibration as JSON in the file's metadata) or ``.pth``
(``{"format", "spec", "calibration", "state_dict"}``). :func:`load_model` reads those, this project's training
checkpoints (the config inside names the model), and published weight files whose architecture it infers from the
state dict (PromptIR's Lightning ``.ckpt``: dense prompts; CPLIR's BasicSR ``.pth``: sparse prompts), with
``name`` / ``args`` overriding what it infers.

``spec`` is :attr:`model.spec` as recorded by :func:`cplir.models.build_model`: ``{"name", "args"}``. It records
the kind of prompts too (``promptir``: dense, ``cplir``: sparse), which the weights cannot tell: both have the same
keys and shapes. A published file carries no spec; :func:`load_model` then says on ``model.load_note`` what it
assumed and how to choose otherwise.

``calibration`` (optional) is what the routing analysis measured on the validation sets at the end of training:
for each prompt block and each task, the frequency with which each component was the block's top-1 selection,
``{block name: {task: [frequency per component]}}``, e.g. ``{"prompt3": {"derain": [0.02, 0.91, 0.05, 0.02,
0.0], ...}, ...}`` (one list of ``num_prompts`` entries per task, summing to 1). ``cplir restore`` infers each
image's degradation from it (:mod:`cplir.inference.calibration`).
"""

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from cplir.errors import CheckpointError
from cplir.models.registry import build_model
from cplir.models.weights import CONTAINER_KEYS, load_checkpoint_file, load_weights, read_state_dict

MODEL_FORMAT = "cplir-model-1"
TRAINING_FORMAT = "cplir-checkpoint-1"
BASICSR_KEYS = {"ema": "params_ema", "model": "params"}  # the weights choice -> the key of a BasicSR file
WEIGHT_CHOICES = tuple(BASICSR_KEYS)
PathLike = Union[str, os.PathLike]


def model_spec(model: nn.Module) -> Dict[str, Any]:
    spec = getattr(model, "spec", None)
    if not isinstance(spec, dict) or "name" not in spec:
        raise CheckpointError(f"this {type(model).__name__} does not know how it was built: create it with "
                              "cplir.models.build_model(name, **args) so its model file can rebuild it")
    return {"name": spec["name"], "args": dict(spec.get("args", {}))}


def save_model(model: nn.Module, path: PathLike, calibration: Optional[dict] = None,
               overwrite: bool = False) -> Path:
    """Write ``model``'s weights with its spec (and routing calibration) to ``.safetensors`` or ``.pth``.

    An existing file is never replaced unless ``overwrite``.
    """
    from cplir.engine.checkpoint import atomic_save, new_file_mode

    path = Path(path)
    spec = model_spec(model)
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} already exists; choose another name or pass --overwrite")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError as err:
            raise CheckpointError("writing .safetensors needs the safetensors package: pip install safetensors, "
                                  "or write a .pth file") from err
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"format": MODEL_FORMAT, "spec": json.dumps(spec),
                    "calibration": json.dumps(calibration) if calibration is not None else ""}
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(state, str(tmp), metadata=metadata)
        os.chmod(tmp, new_file_mode())  # safetensors creates 0600
        os.replace(tmp, path)
        return path
    if path.suffix != ".pth":
        raise CheckpointError(f"unknown model file type {path.suffix!r} for {path}: use .safetensors or .pth")
    return atomic_save({"format": MODEL_FORMAT, "spec": spec, "calibration": calibration, "state_dict": state},
                       path)


def choose_weights(state: Mapping, weights: str = "ema") -> Tuple[Mapping, str]:
    """The weights of a training checkpoint to evaluate: ``"ema"`` (the raw weights when the run had no EMA) or
    ``"model"``. Returns the state dict and which one it is. The one choice trainer, test, export and restore use."""
    if weights not in WEIGHT_CHOICES:
        raise CheckpointError(f"weights must be 'ema' or 'model', got {weights!r}")
    if weights == "ema" and state.get("ema") is not None:
        return state["ema"], "ema"
    return state["model"], "model"


def read_model_file(path: PathLike, weights: str = "ema") -> Dict[str, Any]:
    """``{"spec", "calibration", "state_dict", "kind"}`` of any file :func:`load_model` reads; ``spec`` is None
    when the file does not say (published weights), ``kind`` one of model-file, training-checkpoint, weights."""
    obj = load_checkpoint_file(Path(path))
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a model file or checkpoint")
    if obj.get("format") == MODEL_FORMAT:
        return {"spec": obj["spec"], "calibration": obj.get("calibration") or None, "state_dict": obj["state_dict"],
                "kind": "model-file"}
    if obj.get("format") == TRAINING_FORMAT:
        try:
            model_cfg = obj["config"]["model"]
            state, which = choose_weights(obj, weights)
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"training checkpoint {path} lacks its {err} entry; it is damaged") from err
        return {"spec": {"name": model_cfg["name"], "args": dict(model_cfg.get("args") or {})},
                "calibration": obj.get("calibration"), "state_dict": state, "kind": "training-checkpoint",
                "container": which}
    container = basicsr_container(obj, weights) or next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)),
                                                        "")
    state = read_state_dict(obj[container] if container in BASICSR_KEYS.values() else obj)
    return {"spec": None, "calibration": None, "state_dict": state, "kind": "weights", "container": container}


def basicsr_container(obj: Mapping, weights: str = "ema") -> str:
    """Which weights of a BasicSR / CPLIR ``.pth`` to read: ``params_ema`` for ``"ema"`` (``params`` when the file
    has no EMA copy, as BasicSR's ``load_network`` falls back) and ``params`` for ``"model"`` (what CPLIR's
    published test config loads: its ``param_key_g`` default). "" when ``obj`` is not a BasicSR file."""
    present = [key for key in BASICSR_KEYS.values() if isinstance(obj.get(key), Mapping)]
    if not present:
        return ""
    wanted = BASICSR_KEYS[weights]
    if wanted in present or weights == "ema":
        return wanted if wanted in present else "params"
    raise CheckpointError(f"the file holds no {wanted!r} weights, only {present}: choose --weights ema "
                          "(eval.weights: ema)")


def load_model(path: PathLike, name: Optional[str] = None, args: Optional[dict] = None, weights: str = "ema",
               device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Rebuild and load the network of a model file, training checkpoint or published weights file, in eval mode.

    ``name`` / ``args`` override the file's spec (or what is inferred from a published file's state dict). The
    model carries ``.spec``, ``.calibration`` (None when the file has none) and ``.load_note`` (for a published
    file: which model was assumed and how to choose another; None when the file describes itself).
    """
    info = read_model_file(path, weights)
    spec, note = info["spec"], None
    if spec is not None and name is not None and spec["name"] != name:
        raise CheckpointError(f"{path} holds a {spec['name']!r} model, not {name!r}; drop --arch or pick the "
                              "matching file")
    if spec is None:
        try:
            spec = infer_spec(info["state_dict"], info.get("container", ""))
            note = assumed_model_note(path, info.get("container", ""), spec["name"], name)
        except CheckpointError:
            if name is None:
                raise
            spec = {"name": name, "args": {}}  # an architecture the inference does not know, named by the user
    spec = {"name": name or spec["name"], "args": {**spec["args"], **(args or {})}}
    model = build_model(spec["name"], **spec["args"])
    load_weights(model, info["state_dict"])
    model.calibration = info["calibration"]
    model.load_note = note
    return model.to(device).eval()


_PROMPT_KINDS = {"promptir": "PromptIR, dense prompts", "cplir": "CPL, Sparse Prompt Modules"}


def assumed_model_note(path: PathLike, container: str, inferred: str, chosen: Optional[str] = None) -> str:
    """One line saying which model a file without a spec was read as, and why: PromptIR and CPL weights have
    identical keys, so only the file's layout (or the user) tells them apart."""
    layout = {"state_dict": "a Lightning checkpoint (weights under 'state_dict'), as PromptIR publishes",
              "params": "a BasicSR file (weights under 'params'), as CPLIR publishes",
              "params_ema": "a BasicSR file (weights under 'params_ema'), as CPLIR publishes"}.get(
        container, "a plain state dict")
    if chosen is not None and chosen != inferred:
        return (f"{path} does not say which model it holds; read as {chosen!r} as asked (its layout, {layout}, "
                f"suggests {inferred!r}, {_PROMPT_KINDS.get(inferred, '')})")
    other = "cplir" if inferred == "promptir" else "promptir"
    return (f"{path} does not say which model it holds; read as {inferred!r} ({_PROMPT_KINDS.get(inferred, '')}) "
            f"because it is {layout}; --arch {other} reads it as {_PROMPT_KINDS.get(other, other)}")


_BLOCK_KEY = re.compile(r"^(encoder_level[1-3]|latent|refinement)\.(\d+)\.")


def infer_spec(state: Mapping[str, torch.Tensor], container: str = "") -> Dict[str, Any]:
    """A PromptIR / CPL spec from a published state dict: width from ``patch_embed``, blocks per level from the
    keys, heads from the attention temperatures, prompt count, widths and sizes from ``prompt_param``.

    PromptIR's release (Lightning ``state_dict``) has dense prompts; CPLIR's (BasicSR ``params``/``params_ema``)
    sparse ones with top-1 routing. Other architectures need ``name`` and ``args`` given explicitly.
    """
    if "patch_embed.proj.weight" not in state or "prompt1.prompt_param" not in state:
        raise CheckpointError("cannot tell which architecture these weights belong to (not a PromptIR/CPL state "
                              "dict and no cplir spec inside): pass the model name and its arguments explicitly "
                              "(--arch NAME --arg key=value)")
    counts: Dict[str, int] = {}
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m:
            counts[m.group(1)] = max(counts.get(m.group(1), 0), int(m.group(2)) + 1)
    heads = [state[f"{level}.0.attn.temperature"].shape[0]
             for level in ("encoder_level1", "encoder_level2", "encoder_level3", "latent")]
    prompts = [state[f"prompt{i}.prompt_param"].shape for i in (1, 2, 3)]
    args = {"dim": state["patch_embed.proj.weight"].shape[0],
            "num_blocks": [counts["encoder_level1"], counts["encoder_level2"], counts["encoder_level3"],
                           counts["latent"]],
            "num_refinement_blocks": counts["refinement"], "heads": heads,
            "num_prompts": prompts[0][1], "prompt_dims": [p[2] for p in prompts],
            "prompt_sizes": [p[3] for p in prompts]}
    return {"name": "cplir" if container in ("params", "params_ema") else "promptir", "args": args}
