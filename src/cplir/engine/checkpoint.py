"""Training checkpoints: one file each, written atomically, read back without unpickling arbitrary objects.

A checkpoint holds model, EMA and negative-model weights, optimiser and scaler states, RNG states, the iteration
and the resolved config. Files are written to a temporary name in the same folder and renamed, so a kill never
leaves a corrupt ``latest`` checkpoint.
"""

import os
import re
import tempfile
from pathlib import Path
from typing import List, Optional, Union

import torch

from cplir.errors import CheckpointError

FORMAT = "cplir-checkpoint-1"
_NAME = re.compile(r"^iter_(\d+)\.pth$")


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:08d}.pth"


def atomic_save(obj, path: Union[str, Path]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def list_checkpoints(folder: Union[str, Path]) -> List[Path]:
    """Training checkpoints in ``folder``, oldest iteration first (temporary files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(folder: Union[str, Path], keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (keep <= 0 keeps everything)."""
    if keep > 0:
        for path in list_checkpoints(folder)[:-keep]:
            path.unlink(missing_ok=True)


def resolve_resume(resume: str, run_dir: Union[str, Path]) -> Optional[Path]:
    """``--resume`` value -> checkpoint path: ``auto`` picks the newest in ``run_dir/checkpoints`` (None if
    there is none yet), anything else must be an existing file."""
    if resume == "auto":
        found = list_checkpoints(Path(run_dir) / "checkpoints")
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_file():
        raise CheckpointError(f"--resume {resume}: no such checkpoint file (use a path or 'auto')")
    return path


def load_training_checkpoint(path: Union[str, Path]) -> dict:
    """A checkpoint written by :func:`atomic_save` during training; clear errors for anything else."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt stream fails in many ways inside torch's unpickler
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cplir training checkpoint (to start from pretrained weights, use "
                              "model weights import instead of --resume)")
    return state


def export_weights(checkpoint: Union[str, Path], out: Union[str, Path], which: str = "ema") -> Path:
    """Write the model weights of a training checkpoint as a plain state dict (``.pth``) or ``.safetensors``.

    ``which``: ``"ema"`` (falls back to the raw weights when the run had no EMA) or ``"model"``.
    """
    state = load_training_checkpoint(checkpoint)
    weights = state["ema"] if which == "ema" and state.get("ema") is not None else state["model"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError as err:
            raise CheckpointError("writing .safetensors needs the safetensors package: pip install safetensors, "
                                  "or export to a .pth file") from err
        save_file({k: v.contiguous() for k, v in weights.items()}, str(out))
    else:
        atomic_save(dict(weights), out)
    return out
