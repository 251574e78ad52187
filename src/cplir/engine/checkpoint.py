"""Training checkpoints: one file each, written atomically, read back without unpickling arbitrary objects.

A checkpoint holds model, EMA and negative-model weights, optimiser and scaler states, RNG states, the iteration
and the resolved config. Files are written to a temporary name in the same folder and renamed, so a kill never
leaves a corrupt ``latest`` checkpoint (the temporary a kill leaves behind is removed at the next start:
:func:`remove_stale_temporaries`); they get the permissions the umask gives any new file.
"""

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

import torch

from cplir.errors import CheckpointError
from cplir.models.weights import load_checkpoint_file
from cplir.outputs import prepare_output_file

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
        os.fchmod(fd, new_file_mode())  # mkstemp creates 0600; a checkpoint is as shareable as any new file
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def new_file_mode() -> int:
    """The permissions the umask gives a new file (``0o666 & ~umask``); reading the umask means setting it, so
    it is set back at once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def remove_stale_temporaries(folder: Union[str, Path]) -> List[Path]:
    """Delete the temporaries of writes that a kill interrupted (``.NAME.*.tmp`` in ``folder``); returns them.
    Call it only while no other process writes into ``folder`` (the run lock)."""
    folder = Path(folder)
    stale = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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
    """A checkpoint written by :func:`atomic_save` during training; clear errors for anything else (a resume
    checks its entries too: :func:`check_entries`)."""
    path = Path(path)
    state = load_checkpoint_file(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        kind = "a model file" if isinstance(state, dict) and "spec" in state else "weights"
        raise CheckpointError(f"{path} is not a cplir training checkpoint (run_dir/checkpoints/iter_N.pth) but {kind}; "
                              "to start from trained weights, use them as pretrained weights instead")
    return state


EXPORT_FORMATS = {"safetensors": ".safetensors", "pth": ".pth", "onnx": ".onnx"}


def export_path(out: Union[str, Path], format: Optional[str] = None) -> Tuple[str, Path]:
    """The format and file of ``cplir export``: from ``format``, else from the suffix of ``out``; a file without a
    suffix gets the format's. An unknown format or suffix, or one that contradicts the other, is refused."""
    out = Path(out)
    by_suffix = {suffix: name for name, suffix in EXPORT_FORMATS.items()}
    known = ", ".join(f"{name} ({suffix})" for name, suffix in EXPORT_FORMATS.items())
    if format is not None and format not in EXPORT_FORMATS:
        raise CheckpointError(f"unknown export format {format!r}; use one of {known}")
    if out.suffix:
        if out.suffix not in by_suffix:
            raise CheckpointError(f"cannot tell the format of {out} from its suffix; name it with one of "
                                  f"{', '.join(by_suffix)}, or pass --format")
        if format is not None and by_suffix[out.suffix] != format:
            raise CheckpointError(f"--format {format} does not match the file name {out}; name it "
                                  f"{out.with_suffix(EXPORT_FORMATS[format]).name}")
        return by_suffix[out.suffix], out
    if format is None:
        raise CheckpointError(f"{out} has no suffix: pass --format ({known}) or add the suffix")
    return format, out.with_name(out.name + EXPORT_FORMATS[format])


# Entry -> (accepted types, what it should be), for the message about a damaged checkpoint.
_ENTRIES = {"iteration": (int, "a whole number"), "config": (Mapping, "a mapping"), "model": (Mapping, "weights"),
            "ema": ((Mapping, type(None)), "weights or null"), "objective": (Mapping, "a mapping"),
            "optimizer": (Mapping, "an optimiser state"), "scaler": (Mapping, "a scaler state"),
            "rng": (Mapping, "random generator states")}


def check_entries(state: dict, path: Union[str, Path]) -> None:
    """Refuse a training checkpoint whose entries are missing or of the wrong kind (a damaged or hand-edited
    file), naming the entry, before any of it is loaded."""
    def damaged(key: str, problem: str):
        raise CheckpointError(f"training checkpoint {path} is damaged: its {key!r} entry {problem}; resume from "
                              "another checkpoint of the run")

    for key, (types, what) in _ENTRIES.items():
        if key not in state:
            damaged(key, "is missing")
        if not isinstance(state[key], types) or isinstance(state[key], bool):
            damaged(key, f"is a {type(state[key]).__name__}, not {what}")
    if state["iteration"] < 0:
        damaged("iteration", f"is negative ({state['iteration']})")
    generator = state["rng"].get("torch")
    if not (isinstance(generator, torch.Tensor) and generator.dtype == torch.uint8 and generator.dim() == 1):
        damaged("rng", "holds no CPU generator state (a 1-D uint8 tensor under 'torch')")
    if not isinstance(state["rng"].get("cuda", []), (list, tuple)):
        damaged("rng", "holds CUDA generator states that are not a list")


def export_weights(checkpoint: Union[str, Path], out: Union[str, Path], which: str = "ema",
                   overwrite: bool = False, format: Optional[str] = None, name: Optional[str] = None,
                   args: Optional[dict] = None, say: Optional[Callable[[str], None]] = None) -> Path:
    """Export the network of ``checkpoint`` (anything :func:`cplir.models.load_model` reads: a training
    checkpoint, a model file, published weights) to ``out`` in the format of :func:`export_path`: a
    self-describing model file (``.safetensors`` / ``.pth``, :func:`cplir.models.save_model`, with the routing
    calibration when there is one) or an ONNX graph. ``which``: the ``"ema"`` weights of a training checkpoint
    (the raw ones when the run had no EMA) or ``"model"``; ``name`` / ``args`` override the architecture;
    ``say`` receives the note on which model a published file was read as."""
    from cplir.models.model_file import load_model, save_model

    format, out = export_path(out, format)
    checkpoint = Path(checkpoint)
    if out.exists() and checkpoint.exists() and out.resolve() == checkpoint.resolve():
        raise CheckpointError(f"--out {out} is the checkpoint being exported; write the model file elsewhere")
    prepare_output_file(out, overwrite, "model file")
    model = load_model(checkpoint, name=name, args=args, weights=which)
    if model.load_note and say is not None:
        say(f"note: {model.load_note}")
    if format == "onnx":
        from cplir.models.onnx_export import export_onnx

        return export_onnx(model, out, overwrite=overwrite)
    return save_model(model, out, calibration=model.calibration, overwrite=overwrite)
