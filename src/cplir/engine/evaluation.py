"""Evaluation on test sets under a named metric protocol: used by validation during training and `cplir test`.

Per-image scores are averaged per task, then tasks are averaged with equal weight, as the papers' tables do.
Each rank scores an interleaved shard of every test set; sums are reduced across ranks.
"""

import contextlib
import csv
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from tqdm import tqdm

from cplir.data.benchmarks import load_benchmark
from cplir.data.datasets import PairedDataset, build_eval_loader, evenly_spaced
from cplir.data.image_io import write_png
from cplir.engine.distributed import DistInfo, all_reduce_sum
from cplir.inference import run_padded
from cplir.metrics import psnr_torch, ssim_torch
from cplir.metrics.lpips import LPIPS, lpips_torch
from cplir.metrics.protocols import PROMPTIR_CROP_BASE

FIELDS = ("psnr", "ssim", "l1", "lpips")
NOT_AVAILABLE = "n/a"


def build_test_sets(cfg, max_images: int = 0) -> Dict[str, PairedDataset]:
    """The config's test sets by name; ``max_images`` > 0 keeps an evenly spread, fixed subset of each task.

    Under the ``promptir`` protocol images are centre-cropped to a multiple of 16 before synthesis and before the
    model sees them, as PromptIR's test sets do (the metric's own crop is then a no-op).
    """
    multiple = PROMPTIR_CROP_BASE if cfg.eval.protocol == "promptir" else 1
    sets = {}
    for source in cfg.data.test:
        records = load_benchmark(source.benchmark, source.root, source.split, **source.options)
        if max_images:
            records = {task: evenly_spaced(recs, max_images) for task, recs in records.items()}
        name = source.benchmark if len(cfg.data.test) == 1 else f"{source.benchmark}:{source.root}"
        sets[name] = PairedDataset(records, seed=cfg.seed, multiple_of=multiple)
    return sets


def _gather_names(names: List[str], dist: DistInfo) -> List[str]:
    """Task names known to any rank (a rank may hold no image of a small task)."""
    if not dist.distributed:
        return names
    import torch.distributed as tdist

    gathered: List[Optional[List[str]]] = [None] * dist.world_size
    tdist.all_gather_object(gathered, names)
    return sorted({n for part in gathered for n in part})


@torch.no_grad()
def evaluate(model: Callable, datasets: Dict[str, PairedDataset], protocol: str, crop_border: int = 0,
             pad_multiple: int = 8, device: torch.device = torch.device("cpu"), dist: DistInfo = DistInfo(),
             autocast=contextlib.nullcontext, progress: bool = False, save_dir: Optional[Path] = None,
             num_workers: int = 0, *, pad_mode: str = "reflect",
             lpips: Optional[LPIPS] = None) -> Dict[str, Dict[str, float]]:
    """Scores per task: ``{task: {"psnr", "ssim", "l1", "count"}}`` plus ``"lpips"`` when an LPIPS metric is given
    (tasks prefixed by the set name when there are several sets). Inputs are padded to ``pad_multiple`` with
    ``pad_mode`` and the output cropped back. Restored images are written to ``save_dir/<set>/<task>/`` when
    given."""
    fields = [f for f in FIELDS if f != "lpips" or lpips is not None]
    width = len(fields) + 1  # the last column counts images
    sums: Dict[str, torch.Tensor] = {}
    loaders = {name: build_eval_loader(ds, num_workers, dist.rank, dist.world_size) for name, ds in datasets.items()}
    bar = tqdm(total=sum(len(loader) for loader in loaders.values()), disable=not progress, desc="evaluate",
               unit="img", dynamic_ncols=True)
    for set_name, loader in loaders.items():
        for sample in loader:  # batches of one image: sizes differ
            lq, gt = sample["lq"].to(device), sample["gt"].to(device)
            task = sample["task"][0]
            with autocast():
                out = run_padded(model, lq, pad_multiple, pad_mode)
            out = out.float().clamp(0, 1)
            key = task if len(datasets) == 1 else f"{set_name}/{task}"
            scores = [psnr_torch(out, gt, protocol, crop_border)[0], ssim_torch(out, gt, protocol, crop_border)[0],
                      (out - gt).abs().mean()]
            if lpips is not None:
                scores.append(lpips_torch(lpips, out, gt, protocol, crop_border)[0])
            row = torch.stack([v.double() for v in scores] + [torch.ones((), dtype=torch.double, device=device)])
            sums[key] = sums.get(key, torch.zeros(width, dtype=torch.double, device=device)) + row
            if save_dir is not None:
                write_png(Path(save_dir) / set_name / task / (Path(sample["key"][0]).stem + ".png"), out[0])
            bar.update(1)
    bar.close()
    names = _gather_names(sorted(sums), dist)
    if not names:
        return {}
    table = torch.stack([sums.get(n, torch.zeros(width, dtype=torch.double, device=device)) for n in names])
    all_reduce_sum(table, dist)
    results = {}
    for name, (*totals, count) in zip(names, table.tolist()):
        results[name] = {f: total / count for f, total in zip(fields, totals)}
        results[name]["count"] = int(count)
    return results


def average(per_task: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Equal-weight mean over tasks of each score."""
    if not per_task:
        return {}
    fields = [f for f in FIELDS if all(f in v for v in per_task.values())]
    return {f: sum(v[f] for v in per_task.values()) / len(per_task) for f in fields}


def flatten(per_task: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """``{"task/psnr": ..., ..., "psnr": average, ...}`` for logging."""
    flat = {f"{task}/{f}": v[f] for task, v in per_task.items() for f in FIELDS if f in v}
    flat.update(average(per_task))
    return flat


def format_table(per_task: Dict[str, Dict[str, float]], protocol: str, crop_border: int = 0,
                 lpips_note: str = "") -> str:
    """The paper-style table: one row per task and the average, PSNR/SSIM (and LPIPS, scored or ``n/a`` when
    ``lpips_note`` says why not), with the protocol named."""
    width = max([len("average")] + [len(t) for t in per_task])
    show_lpips = bool(lpips_note) or any("lpips" in v for v in per_task.values())

    def lpips_cell(v) -> str:
        return f"  {v['lpips']:>6.4f}" if "lpips" in v else f"  {NOT_AVAILABLE:>6}"

    lines = [f"protocol: {protocol}" + (f" (crop_border {crop_border})" if crop_border else ""),
             f"{'task':<{width}}  {'images':>6}  {'PSNR':>7}  {'SSIM':>6}" + ("  LPIPS" if show_lpips else "")]
    for task, v in per_task.items():
        lines.append(f"{task:<{width}}  {v['count']:>6d}  {v['psnr']:>7.2f}  {v['ssim']:>6.4f}"
                     + (lpips_cell(v) if show_lpips else ""))
    avg = average(per_task)
    if avg:
        count = sum(v["count"] for v in per_task.values())
        lines.append(f"{'average':<{width}}  {count:>6d}  {avg['psnr']:>7.2f}  {avg['ssim']:>6.4f}"
                     + (lpips_cell(avg) if show_lpips else ""))
    if lpips_note:
        lines.append(lpips_note)
    return "\n".join(lines)


def write_results(per_task: Dict[str, Dict[str, float]], protocol: str, crop_border: int, out_dir: Path,
                  extra: Optional[dict] = None, lpips_note: str = "") -> Dict[str, Path]:
    """``results.json`` and ``results.csv`` in ``out_dir``; every number carries its protocol. When LPIPS was
    asked for but could not be computed, its column says ``n/a`` and ``lpips_note`` (json) says why."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"protocol": protocol, "crop_border": crop_border, "tasks": per_task, "average": average(per_task),
               **({"lpips": NOT_AVAILABLE, "lpips_note": lpips_note} if lpips_note else {}), **(extra or {})}
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(payload, indent=2))
    show_lpips = bool(lpips_note) or any("lpips" in v for v in per_task.values())

    def row(name: str, count: int, v: dict) -> list:
        cells = [name, count, f"{v['psnr']:.4f}", f"{v['ssim']:.6f}"]
        if show_lpips:
            cells.append(f"{v['lpips']:.6f}" if "lpips" in v else NOT_AVAILABLE)
        return cells + [protocol, crop_border]

    csv_path = out_dir / "results.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "images", "psnr", "ssim"] + (["lpips"] if show_lpips else [])
                        + ["protocol", "crop_border"])
        for task, v in per_task.items():
            writer.writerow(row(task, v["count"], v))
        avg = payload["average"]
        if avg:
            writer.writerow(row("average", sum(v["count"] for v in per_task.values()), avg))
    return {"json": json_path, "csv": csv_path}
