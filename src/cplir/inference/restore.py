"""``cplir restore INPUT... --model FILE --out DIR``: restore a user's image files with a model file.

Inputs are files, folders (their image files; sub-folders too with ``--recursive``) and glob patterns (``**``
with ``--recursive``). Each output keeps the input's path relative to the folder given (or to the fixed part of a
glob pattern) under DIR, with the extension ``--ext`` (PNG by default); a file named directly lands in DIR.

Nothing is lost:

* an existing output file is kept and reported, unless ``--overwrite``;
* DIR may not be an input folder (nor, with ``--recursive``, lie inside one), so no input is ever replaced;
* a file that cannot be read or written is skipped with one line naming it and the others are still restored;
  the run ends with ``restored N, skipped M`` and exits with status 1 when anything was skipped (outputs kept
  because they exist are counted apart: re-running an interrupted batch is not a failure).

When the model file carries a routing calibration, each image's most likely degradation is printed
(``photo.jpg: derain 0.91``) and ``routing.csv`` lists, per image and prompt block, the selected component, its
routing probability and the inferred task (:mod:`cplir.inference.calibration`).
"""

import csv
import glob
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from cplir.data.image_io import IMAGE_EXTENSIONS, is_image_file
from cplir.data.photo_io import read_photo, write_photo
from cplir.errors import ConfigError, CplirError
from cplir.inference.restorer import Restorer

_GLOB_CHARS = set("*?[")


@dataclass
class Plan:
    """What a run will do: ``jobs`` (source, target) in order, and one line per input it cannot use."""

    jobs: List[Tuple[Path, Path]] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


@dataclass
class Summary:
    restored: int = 0
    skipped: int = 0
    kept: int = 0

    def line(self) -> str:
        kept = f", kept {self.kept} existing (--overwrite replaces them)" if self.kept else ""
        return f"restored {self.restored}, skipped {self.skipped}{kept}"


def normalise_ext(ext: str) -> str:
    ext = ext.lower() if ext.startswith(".") else f".{ext.lower()}"
    if ext not in IMAGE_EXTENSIONS:
        raise ConfigError(f"--ext {ext}: cannot write that type; use one of {', '.join(IMAGE_EXTENSIONS)}")
    return ext


def _images_in(folder: Path, recursive: bool) -> List[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and is_image_file(p) and not p.name.startswith("."))


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard."""
    parts = []
    for part in Path(pattern).parts:
        if _GLOB_CHARS & set(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def plan_jobs(inputs: Sequence[str], out: Path, ext: str, recursive: bool = False) -> Plan:
    """Sources and targets for ``inputs`` (see the module docstring); raises ConfigError when ``out`` is an input
    folder (or inside one, with ``recursive``)."""
    plan, folders, sources = Plan(), [], []  # sources: (file, folder its target path is relative to)
    for item in inputs:
        path = Path(item)
        if _GLOB_CHARS & set(item) and not path.exists():
            base = _glob_base(item)
            matches = sorted(Path(m) for m in glob.glob(item, recursive=recursive))
            if not matches:
                plan.problems.append(f"skipped {item}: no file matches this pattern")
            folders.append(base)
            for match in matches:
                files = _images_in(match, recursive) if match.is_dir() else [match]
                sources += [(f, base) for f in files]
        elif path.is_dir():
            files = _images_in(path, recursive)
            if not files:
                plan.problems.append(f"skipped {item}: no image files in this folder"
                                     + ("" if recursive else " (--recursive includes sub-folders)"))
            folders.append(path)
            sources += [(f, path) for f in files]
        elif path.exists():
            folders.append(path.parent)
            sources.append((path, path.parent))
        else:
            plan.problems.append(f"skipped {item}: no such file or folder")
    _check_output_folder(out, folders, recursive)
    targets: Dict[Path, Path] = {}
    seen = set()
    for source, base in sources:
        if source.resolve() in seen:
            continue
        seen.add(source.resolve())
        target = out / source.relative_to(base).with_suffix(ext)
        if target in targets:
            plan.problems.append(f"skipped {source}: its output {target} is also the output of {targets[target]}; "
                                 "restore one of them separately")
            continue
        targets[target] = source
        plan.jobs.append((source, target))
    return plan


def _check_output_folder(out: Path, folders: List[Path], recursive: bool) -> None:
    out = out.resolve()
    for folder in folders:
        folder = folder.resolve()
        if out == folder or (recursive and folder in out.parents):
            raise ConfigError(f"--out {out} is {'an' if out == folder else 'inside an'} input folder ({folder}); "
                              "write the restored images to a folder of their own")


def free_name(path: Path, overwrite: bool) -> Path:
    """``path``, or when it exists (and not ``overwrite``) the first free ``stem-2``, ``stem-3``, ... beside it."""
    n = 2
    candidate = path
    while candidate.exists() and not overwrite:
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def write_routing_csv(out: Path, rows: List[dict], overwrite: bool) -> Path:
    path = free_name(out / "routing.csv", overwrite)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["image", "block", "component", "probability", "task",
                                                "task_probability"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, path)
    return path


def run_restore(inputs: Sequence[str], model, out, ext: str = "png", recursive: bool = False,
                overwrite: bool = False, progress: bool = True, say: Optional[Callable[[str], None]] = None,
                **restorer_options) -> Summary:
    """Restore ``inputs`` into ``out`` (see the module docstring); ``restorer_options`` go to :class:`Restorer`.
    ``say`` prints a line (default: above the progress bar)."""
    from tqdm import tqdm

    out = Path(out)
    plan = plan_jobs(inputs, out, normalise_ext(ext), recursive)
    say = say or (lambda line: tqdm.write(line, file=sys.stdout))
    restorer = Restorer(model, progress=progress, **restorer_options)
    if getattr(restorer.model, "load_note", None):
        say(f"note: {restorer.model.load_note}")
    summary, rows = Summary(skipped=len(plan.problems)), []
    for line in plan.problems:
        say(line)
    for source, target in tqdm(plan.jobs, unit="image", desc="restore", disable=not progress):
        if target.exists() and not overwrite:
            say(f"kept {target}: it exists already")
            summary.kept += 1
            continue
        try:
            photo, result = restorer.restore_photo(read_photo(source))
            write_photo(target, photo, overwrite=overwrite)
        except CplirError as err:  # the message names the file already when it comes from reading or writing it
            say(f"skipped: {err}" if str(source) in str(err) else f"skipped {source}: {err}")
            summary.skipped += 1
            continue
        except (MemoryError, RuntimeError) as err:  # torch reports exhausted memory as RuntimeError
            if "memory" not in str(err).lower() and not isinstance(err, MemoryError):
                raise
            say(f"skipped {source}: out of memory ({type(err).__name__}); restore it in tiles with --tile auto")
            summary.skipped += 1
            continue
        summary.restored += 1
        ranking = restorer.detect(result.routing)
        if ranking:
            task, prob = ranking[0]
            say(f"{source}: {task} {prob:.2f}")
            for block, probs in result.routing.items():
                component = int(probs[0].argmax())
                rows.append({"image": str(source), "block": block, "component": component,
                             "probability": f"{float(probs[0, component]):.4f}", "task": task,
                             "task_probability": f"{prob:.4f}"})
    if rows:
        say(f"wrote {write_routing_csv(out, rows, overwrite)}")
    say(summary.line())
    return summary
