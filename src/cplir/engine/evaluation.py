"""Evaluation on test sets under a named metric protocol: used by validation during training and `cplir test`.

Per-image scores are averaged per task, then tasks are averaged with equal weight, as the papers' tables do.
Each rank scores an interleaved shard of every test set; sums are reduced across ranks. Every test image is checked
against the protocol's smallest scorable size before any is restored.
"""

import contextlib
import csv
import io
import json
import math
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from tqdm import tqdm

from cplir.config import name_test_sets
from cplir.data.benchmarks import load_benchmark
from cplir.data.datasets import PairedDataset, build_eval_loader, evenly_spaced
from cplir.data.image_io import image_size, write_png
from cplir.engine.distributed import DistInfo, all_reduce_sum
from cplir.errors import DataError, InputSizeError
from cplir.inference import run_padded, run_tiled
from cplir.metrics import psnr_torch, ssim_torch
from cplir.metrics.lpips import LPIPS, lpips_torch
from cplir.metrics.protocols import PROMPTIR_CROP_BASE, min_image_side
from cplir.outputs import collision_free_names, write_text_atomic

FIELDS = ("psnr", "ssim", "l1", "lpips")
NOT_AVAILABLE = "n/a"
# The degraded input scored as if it were the restoration: the do-nothing baseline of `cplir test`.
BASELINE_FIELDS = ("input_psnr", "input_ssim")
RESULT_FILES = ("results.json", "results.csv", "per_image.csv")


def build_test_sets(cfg, max_images: int = 0) -> Dict[str, PairedDataset]:
    """The config's test sets by name (:func:`cplir.config.name_test_sets`); ``max_images`` > 0 keeps an evenly
    spread, fixed subset of each task. Images too small for the protocol are refused here (headers only).

    Under the ``promptir`` protocol images are centre-cropped to a multiple of 16 before synthesis and before the
    model sees them, as PromptIR's test sets do (the metric's own crop is then a no-op).
    """
    multiple = PROMPTIR_CROP_BASE if cfg.eval.protocol == "promptir" else 1
    sets = {}
    for name, source in zip(name_test_sets(cfg.data.test), cfg.data.test):
        records = load_benchmark(source.benchmark, source.root, source.split, **source.options)
        if max_images:
            records = {task: evenly_spaced(recs, max_images) for task, recs in records.items()}
        sets[name] = PairedDataset(records, seed=cfg.seed, multiple_of=multiple)
        check_image_sizes(name, sets[name], cfg.eval.protocol, cfg.eval.crop_border)
    return sets


def check_image_sizes(name: str, dataset: PairedDataset, protocol: str, crop_border: int = 0) -> None:
    """Refuse a test set holding an image smaller than the protocol can score (:func:`min_image_side`); a
    super-resolution input counts at its restored size, scale times its own."""
    low = min_image_side(protocol, crop_border)
    for record in dataset.records:
        for path, factor in ((record.degraded, record.scale), (record.clean, 1)):
            if path is not None and min(size := image_size(path)) * factor < low:
                border = f" with crop_border {crop_border}" if crop_border else ""
                raise DataError(f"test image {path} ({size[0]}x{size[1]}) of test set {name!r} is smaller than the "
                                f"{low}x{low} pixels the {protocol} protocol{border} can score; remove it or choose "
                                "another protocol")


def _gather_names(names: List[str], dist: DistInfo) -> List[str]:
    """Task names known to any rank (a rank may hold no image of a small task)."""
    if not dist.distributed:
        return names
    import torch.distributed as tdist

    gathered: List[Optional[List[str]]] = [None] * dist.world_size
    tdist.all_gather_object(gathered, names)
    return sorted({n for part in gathered for n in part})


def _image_names(dataset: PairedDataset) -> Dict[Tuple[str, str], str]:
    """(task, key) -> output name of the restored image: the input's relative path, made collision-free."""
    keys: Dict[str, List[str]] = {}
    for record in dataset.records:
        keys.setdefault(record.task, []).append(record.key)
    return {(task, key): name for task, group in keys.items() for key, name in collision_free_names(group).items()}


def _out_of_memory(error: Exception) -> bool:
    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or any(
        phrase in text for phrase in ("out of memory", "can't allocate memory", "not enough memory"))


def _restore(model: Callable, lq: torch.Tensor, pad_multiple: int, pad_mode: str, autocast,
             where: str, tile: int = 0, tile_overlap: int = 32) -> torch.Tensor:
    """The model's output for ``lq`` (1, C, H, W), whole or in ``tile``-sized tiles (0: whole), clamped to
    [0, 1]; a clear error when memory runs out."""
    try:
        with autocast():
            if tile > 0:
                out = run_tiled(lambda part: run_padded(model, part, pad_multiple, pad_mode), lq, tile, tile_overlap,
                                scale=int(getattr(model, "scale", 1) or 1))
            else:
                out = run_padded(model, lq, pad_multiple, pad_mode)
    except (torch.OutOfMemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        height, width = lq.shape[-2:]
        raise InputSizeError(f"restoring {where} ({width}x{height}) needs more memory than is free "
                             f"({str(error).splitlines()[0][:120]}); restore large images in tiles (cplir restore "
                             "--tile) or on a machine with more memory") from error
    return out.float().clamp(0, 1)


def _scores(out: torch.Tensor, gt: torch.Tensor, protocol: str, crop_border: int,
            lpips: Optional[LPIPS] = None) -> List[torch.Tensor]:
    """PSNR and SSIM under ``protocol``, L1 (and LPIPS when given) of one (1, C, H, W) pair, as float64 scalars."""
    scores = [psnr_torch(out, gt, protocol, crop_border)[0], ssim_torch(out, gt, protocol, crop_border)[0],
              (out - gt).abs().mean()]
    if lpips is not None:
        scores.append(lpips_torch(lpips, out, gt, protocol, crop_border)[0])
    return [v.double() for v in scores]


def _reduce(sums: Dict[str, torch.Tensor], fields: Tuple[str, ...], dist: DistInfo,
            device: torch.device) -> Dict[str, Dict[str, float]]:
    """Per-task means of the summed rows ``[*fields, count]`` over every rank."""
    names = _gather_names(sorted(sums), dist)
    if not names:
        return {}
    zero = torch.zeros(len(fields) + 1, dtype=torch.double, device=device)
    table = all_reduce_sum(torch.stack([sums.get(n, zero) for n in names]), dist)
    return {name: {**{f: total / row[-1] for f, total in zip(fields, row)}, "count": int(row[-1])}
            for name, row in zip(names, table.tolist())}


def _gather_rows(rows: List[dict], dist: DistInfo) -> List[dict]:
    """Per-image rows of every rank, ordered by task and key."""
    if dist.distributed:
        import torch.distributed as tdist

        gathered: List[Optional[List[dict]]] = [None] * dist.world_size
        tdist.all_gather_object(gathered, rows)
        rows = [row for part in gathered for row in part]
    return sorted(rows, key=lambda row: (row["task"], row["key"]))


@torch.no_grad()
def evaluate(model: Callable, datasets: Dict[str, PairedDataset], protocol: str, crop_border: int = 0,
             pad_multiple: int = 8, device: torch.device = torch.device("cpu"), dist: DistInfo = DistInfo(),
             autocast=contextlib.nullcontext, progress: bool = False, save_dir: Optional[Path] = None,
             num_workers: int = 0, *, pad_mode: str = "reflect", tile: int = 0, tile_overlap: int = 32,
             lpips: Optional[LPIPS] = None, baseline: bool = False,
             on_set_done: Optional[Callable[[str, dict, List[dict]], None]] = None) -> Dict[str, Dict[str, float]]:
    """Scores per task: ``{task: {"psnr", "ssim", "l1", "count"}}`` plus ``"lpips"`` when an LPIPS metric is given
    (tasks prefixed by the set name when there are several sets). Inputs are padded to ``pad_multiple`` with
    ``pad_mode`` and the output cropped back; with ``tile`` > 0 they are restored in overlapping tiles of that side
    (:func:`cplir.inference.run_tiled`), each padded so, for networks that take one input size only (IDT).

    Args:
        baseline: also score the degraded input against its target (``input_psnr``, ``input_ssim``; NaN where
            input and target differ in size).
        save_dir: write restored images to ``save_dir/<set>/<task>/<name>`` (:func:`_image_names`).
        on_set_done: called on every rank after each set with the set's name, its per-task scores and its
            per-image rows (``{"set", "task", "key", "psnr", ...}``, all ranks'), so results can be written as
            each set finishes.
    """
    fields = tuple(f for f in FIELDS if f != "lpips" or lpips is not None) + (BASELINE_FIELDS if baseline else ())
    results: Dict[str, Dict[str, float]] = {}
    loaders = {name: build_eval_loader(ds, num_workers, dist.rank, dist.world_size) for name, ds in datasets.items()}
    with tqdm(total=sum(len(loader) for loader in loaders.values()), disable=not progress, desc="evaluate",
              unit="img", dynamic_ncols=True) as bar:
        for set_name, loader in loaders.items():
            names = _image_names(datasets[set_name]) if save_dir is not None else {}
            sums: Dict[str, torch.Tensor] = {}
            rows: List[dict] = []
            for sample in loader:  # batches of one image: sizes differ
                lq, gt = sample["lq"].to(device), sample["gt"].to(device)
                task, key = sample["task"][0], sample["key"][0]
                out = _restore(model, lq, pad_multiple, pad_mode, autocast, f"{set_name}/{task}/{key}", tile,
                               tile_overlap)
                values = _scores(out, gt, protocol, crop_border, lpips)
                if baseline:
                    values += (_scores(lq, gt, protocol, crop_border)[:2] if lq.shape == gt.shape
                               else [torch.tensor(math.nan, dtype=torch.double, device=device)] * 2)
                label = task if len(datasets) == 1 else f"{set_name}/{task}"
                row = torch.stack([*values, torch.ones((), dtype=torch.double, device=device)])
                sums[label] = sums.get(label, torch.zeros_like(row)) + row
                if on_set_done is not None:
                    rows.append({"set": set_name, "task": task, "key": key,
                                 **{f: v.item() for f, v in zip(fields, values)}})
                if save_dir is not None:
                    write_png(Path(save_dir) / set_name / task / names[(task, key)], out[0])
                bar.update(1)
            per_set = _reduce(sums, fields, dist, device)
            results.update(per_set)
            if on_set_done is not None:
                on_set_done(set_name, per_set, _gather_rows(rows, dist))
    return results


def average(per_task: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Equal-weight mean over tasks of each score (the baseline's too, when every task has it)."""
    if not per_task:
        return {}
    fields = [f for f in FIELDS + BASELINE_FIELDS if all(f in v for v in per_task.values())]
    return {f: sum(v[f] for v in per_task.values()) / len(per_task) for f in fields}


def flatten(per_task: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """``{"task/psnr": ..., ..., "psnr": average, ...}`` for logging."""
    flat = {f"{task}/{f}": v[f] for task, v in per_task.items() for f in FIELDS if f in v}
    flat.update({f: v for f, v in average(per_task).items() if f in FIELDS})
    return flat


def _columns(per_task: Dict[str, Dict[str, float]], lpips_note: str) -> List[str]:
    """The score columns of a table: PSNR, SSIM, LPIPS when scored or asked for, the degraded input's scores."""
    avg = average(per_task)
    show_lpips = bool(lpips_note) or any("lpips" in v for v in per_task.values())
    return ["psnr", "ssim"] + ["lpips"] * show_lpips + [f for f in BASELINE_FIELDS if f in avg]


def format_table(per_task: Dict[str, Dict[str, float]], protocol: str, crop_border: int = 0,
                 lpips_note: str = "") -> str:
    """The paper-style table: one row per task and the average, PSNR/SSIM (and LPIPS, scored or ``n/a`` when
    ``lpips_note`` says why not; and the degraded input's PSNR/SSIM when measured), with the protocol named."""
    columns = _columns(per_task, lpips_note)
    heads = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "input_psnr": "input PSNR", "input_ssim": "input SSIM"}
    formats = {"psnr": ".2f", "ssim": ".4f", "lpips": ".4f", "input_psnr": ".2f", "input_ssim": ".4f"}
    width = max([len("average")] + [len(t) for t in per_task])
    sizes = {c: max(len(heads[c]), 7 if c == "psnr" else 6) for c in columns}

    def line(task: str, count, v: Dict[str, float]) -> str:
        cells = [f"{v[c]:>{sizes[c]}{formats[c]}}" if c in v else f"{NOT_AVAILABLE:>{sizes[c]}}" for c in columns]
        return "  ".join([f"{task:<{width}}", f"{count:>6}", *cells])

    lines = [f"protocol: {protocol}" + (f" (crop_border {crop_border})" if crop_border else ""),
             "  ".join([f"{'task':<{width}}", f"{'images':>6}", *(f"{heads[c]:>{sizes[c]}}" for c in columns)])]
    lines += [line(task, v["count"], v) for task, v in per_task.items()]
    avg = average(per_task)
    if avg:
        lines.append(line("average", sum(v["count"] for v in per_task.values()), avg))
    if lpips_note:
        lines.append(lpips_note)
    return "\n".join(lines)


def _csv(rows: List[list]) -> str:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue()


def _number(field: str, value: float) -> str:
    return f"{value:.4f}" if field.endswith("psnr") else f"{value:.6f}"


def write_results(per_task: Dict[str, Dict[str, float]], protocol: str, crop_border: int, out_dir: Path,
                  extra: Optional[dict] = None, lpips_note: str = "", rows: Optional[List[dict]] = None
                  ) -> Dict[str, Path]:
    """``results.json`` and ``results.csv`` (per task and the average; the degraded input's scores beside the
    restoration's when measured) and, with ``rows``, ``per_image.csv`` in ``out_dir``; every number carries its
    protocol. When LPIPS was asked for but could not be computed, its column says ``n/a`` and ``lpips_note``
    (json) says why. Each file is replaced atomically, so a results folder is never half written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    avg = average(per_task)
    payload = {"protocol": protocol, "crop_border": crop_border, "tasks": per_task, "average": avg,
               **({"lpips": NOT_AVAILABLE, "lpips_note": lpips_note} if lpips_note else {}), **(extra or {})}
    paths = {"json": write_text_atomic(out_dir / "results.json", json.dumps(payload, indent=2))}
    columns = _columns(per_task, lpips_note)
    entries = list(per_task.items())
    if avg:
        entries.append(("average", {**avg, "count": sum(v["count"] for v in per_task.values())}))
    table = [["task", "images", *columns, "protocol", "crop_border"]]
    table += [[task, v["count"], *(_number(c, v[c]) if c in v else NOT_AVAILABLE for c in columns), protocol,
               crop_border] for task, v in entries]
    paths["csv"] = write_text_atomic(out_dir / "results.csv", _csv(table))
    if rows is not None:
        fields = [f for f in FIELDS + BASELINE_FIELDS if rows and f in rows[0]]
        table = [["set", "task", "image", *fields, "protocol", "crop_border"]]
        table += [[row["set"], row["task"], row["key"], *(_number(f, row[f]) for f in fields), protocol,
                   crop_border] for row in rows]
        paths["per_image"] = write_text_atomic(out_dir / "per_image.csv", _csv(table))
    return paths
