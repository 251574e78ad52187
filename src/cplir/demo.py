"""`make demo`: tiny PromptIR against tiny PromptIR+CPL on the embedded three-task data, on the CPU, in one report.

Both models train with the same budget, seed and data (configs/embedded-three-task-promptir.yaml and
configs/embedded-three-task-cpl.yaml), then the report shows per task the degraded input's scores (the do-nothing
baseline), both models and their difference, both training curves, example crops, and what the prompts learned
(routing entropy and task–prompt mutual information, :mod:`cplir.analysis.routing`). Numbers are measured as they
come, under the promptir protocol, on the embedded set: demo numbers, not comparable to the papers'.

An existing output folder is never deleted: the demo writes to a fresh name (``outputs/demo-2``, ...) unless
``overwrite`` replaces its own earlier results there.
"""

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from cplir.analysis import figures
from cplir.analysis.report import write_report
from cplir.analysis.routing import collect_routing, task_order
from cplir.config import Config, load_config
from cplir.data.embedded import SCENES
from cplir.engine.distributed import DistInfo
from cplir.engine.evaluation import average, build_test_sets, evaluate
from cplir.engine.run_log import read_log
from cplir.engine.trainer import Trainer
from cplir.errors import ConfigError
from cplir.inference import run_padded
from cplir.metrics import psnr_torch

DEMO_CONFIGS = {"PromptIR": "embedded-three-task-promptir.yaml", "CPL": "embedded-three-task-cpl.yaml"}
OWN_OUTPUTS = ("figures", "report.html", "demo.json")  # besides the two run folders
CROP = 96  # side of the example crops


def find_config(name: str) -> Path:
    """``configs/<name>`` in the working directory or in the source checkout this package runs from."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "configs" / name
        if candidate.is_file():
            return candidate
    raise ConfigError(f"cannot find configs/{name}: run the demo from the cplir checkout (make demo)")


def output_folder(out: Path, run_names: Sequence[str], overwrite: bool) -> Path:
    """``out`` when it is new or empty. With ``overwrite``, ``out`` after removing the results of the demo that
    wrote it (its run folders, figures, report; nothing else), refused when ``out`` holds no demo results.
    Otherwise the first free ``out-2``, ``out-3``, ..."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return out
    if overwrite:
        if not (out / "demo.json").is_file():
            raise ConfigError(f"--out {out} exists and holds no demo results; --overwrite only replaces an earlier "
                              "demo's output: choose a new folder")
        for name in [*run_names, *OWN_OUTPUTS]:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        return out
    n = 2
    while Path(f"{out}-{n}").exists():
        n += 1
    fresh = Path(f"{out}-{n}")
    print(f"{out} exists and is kept; writing to {fresh} (--overwrite replaces an earlier demo's results in {out})")
    return fresh


@dataclass
class DemoRun:
    """One trained model of the demo and what the report shows of it."""

    label: str
    cfg: Config
    model: torch.nn.Module
    per_task: Dict[str, Dict[str, float]]
    minutes: float
    labels: List[str]


def train(label: str, cfg: Config) -> DemoRun:
    start = time.perf_counter()
    trainer = Trainer(cfg, DistInfo(), progress=True)
    for note in trainer.feature_labels():
        print(f"note: {note}")
    try:
        trainer.fit()
    finally:
        trainer.logger.close()
    model = (trainer.ema.module if trainer.ema is not None else trainer.net).eval()
    return DemoRun(label, cfg, model, trainer.last_per_task, (time.perf_counter() - start) / 60,
                   trainer.feature_labels())


def comparison_table(runs: Sequence[DemoRun], degraded: Dict[str, Dict[str, float]], tasks: Sequence[str],
                     protocol: str) -> str:
    """Per task (in the order given) and on average: the degraded input, each model, and the last model minus
    the first (PSNR dB / SSIM)."""
    base, other = runs[0], runs[-1]
    rows = {**degraded, "average": average(degraded)}
    scores = [{**r.per_task, "average": average(r.per_task)} for r in runs]
    head = ["degraded input"] + [r.label for r in runs] + [f"{other.label} - {base.label}"]
    width = max(map(len, tasks))
    lines = [f"PSNR (dB) / SSIM, protocol {protocol}, EMA weights after training, embedded test split "
             f"({degraded[tasks[0]]['count']} images per task)",
             f"{'task':<{width}}  " + "  ".join(f"{h:>15}" for h in head)]
    for task in [*tasks, "average"]:
        cells = [rows[task]] + [s[task] for s in scores]
        diff = {f: scores[-1][task][f] - scores[0][task][f] for f in ("psnr", "ssim")}
        lines.append(f"{task:<{width}}  " + "  ".join(f"{c['psnr']:>7.2f} / {c['ssim']:.3f}" for c in cells)
                     + f"  {diff['psnr']:>+7.2f} / {diff['ssim']:+.3f}")
    return "\n".join(lines)


def routing_summary(runs: Sequence[DemoRun], statistics: Dict[str, dict]) -> str:
    images = next(iter(statistics[runs[0].label].values()))["images"]
    lines = [f"per prompt block, on the test images ({', '.join(f'{n} {t}' for t, n in images.items())}): routing "
             "entropy (bits, mean over images; maximum log2 P), mean selection entropy over tasks (bits), task-prompt "
             "mutual information normalised by the task entropy (from the selection; from the routing "
             "probabilities). With few images per task these selection statistics are coarse."]
    for run in runs:
        for block, s in statistics[run.label].items():
            selection = np.mean(list(s["selection_entropy_bits"].values()))
            mi, soft = s["mutual_information"], s["mutual_information_soft"]
            lines.append(f"{run.label:<9} {block}: entropy {s['entropy_bits']['all']:.3f} of "
                         f"{s['max_entropy_bits']:.3f}, selection entropy {selection:.3f}, mutual information "
                         f"{'n/a' if mi is None else f'{mi:.3f}'} (probabilities "
                         f"{'n/a' if soft is None else f'{soft:.3f}'})")
    return "\n".join(lines)


def curves(runs: Sequence[DemoRun], path: Path) -> Path:
    logs = {r.label: (read_log(r.cfg.run_dir, "train"), read_log(r.cfg.run_dir, "val")) for r in runs}

    def series(kind: int, key: str):
        return {label: ([x["iteration"] for x in log[kind]], [x[key] for x in log[kind]])
                for label, log in logs.items() if log[kind] and key in log[kind][0]}

    protocol = runs[0].cfg.eval.protocol
    panels = [figures.Panel("training L1 (mean over the logging window)", "L1", series(0, "l1")),
              figures.Panel(f"validation PSNR (EMA weights, {protocol})", "dB", series(1, "psnr")),
              figures.Panel("validation L1 (EMA weights)", "L1", series(1, "l1"))]
    cpl = [label for label, log in logs.items() if log[0] and "cpr_pos" in log[0][0]]
    for label in cpl:  # the CPR distances live on their own scale
        train_log = logs[label][0]
        panels.append(figures.Panel(f"{label}: CPR distances L_pos (to clean) and L_neg (to mismatched)",
                                    "distance (log scale)",
                                    {k: ([x["iteration"] for x in train_log], [x[f"cpr_{k}"] for x in train_log])
                                     for k in ("pos", "neg")}, log_scale=True))
    return figures.line_charts(panels, path)


@torch.no_grad()
def example_crops(runs: Sequence[DemoRun], datasets, path: Path) -> Path:
    """One test image per task: centre crops of the input, each model's output and the ground truth, with the
    PSNR of each whole image."""
    cfg = runs[0].cfg
    rows, titles, row_titles, seen = [], [], [], set()
    for dataset in datasets.values():
        for index in range(len(dataset)):
            sample = dataset[index]
            if sample["task"] in seen:
                continue
            seen.add(sample["task"])
            lq, gt = sample["lq"][None], sample["gt"][None]
            outs = [lq] + [run_padded(r.model, lq, cfg.eval.pad_multiple, cfg.eval.pad_mode).clamp(0, 1)
                           for r in runs] + [gt]
            h, w = gt.shape[-2:]
            top, left = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
            rows.append([o[0, :, top:top + CROP, left:left + CROP].permute(1, 2, 0).numpy() for o in outs])
            titles.append([f"{float(psnr_torch(o, gt, cfg.eval.protocol)[0]):.2f} dB" for o in outs[:-1]] + [""])
            row_titles.append(sample["task"])
    columns = ["degraded"] + [r.label for r in runs] + ["ground truth"]
    return figures.image_table(rows, path, columns, row_titles, titles)


def routing_figures(runs: Sequence[DemoRun], tables, statistics, folder: Path) -> List[Path]:
    """Entropy per task and mutual information per block of both models, and each model's selection maps."""
    first = statistics[runs[0].label]
    blocks, tasks = list(first), list(next(iter(first.values()))["selection_frequency"])
    paths = [
        figures.grouped_bars(tasks, [(f"{block}: routing entropy", {r.label: [statistics[r.label][block]
                                                                              ["entropy_bits"][t] for t in tasks]
                                                                    for r in runs}) for block in blocks],
                             folder / "routing_entropy.png", ylabel="bits (mean over the task's images)",
                             limit=first[blocks[0]]["max_entropy_bits"], limit_label="maximum, log2 P"),
        figures.grouped_bars(blocks, [("task-prompt mutual information / H(task)",
                                       {r.label: [np.nan if statistics[r.label][b]["mutual_information"] is None
                                                  else statistics[r.label][b]["mutual_information"] for b in blocks]
                                        for r in runs})],
                             folder / "mutual_information.png", xlabel="prompt block", ylabel="normalised MI"),
    ]
    paths += [figures.routing_heatmaps(tables[r.label].probs, tables[r.label].tasks,
                                       folder / f"selection_maps_{r.label.lower()}.png",
                                       f"{r.label}: routing probabilities, test images grouped by task")
              for r in runs]
    return paths


def embedded_scenes() -> str:
    return "; ".join(f"{split}: " + ", ".join(s.name for s in SCENES if s.split == split)
                     for split in ("train", "test"))


def run_demo(out: str = "outputs/demo", overrides: Sequence[str] = (), overwrite: bool = False) -> int:
    """Train both demo models into ``out`` (see the module docstring) and write ``report.html`` and
    ``demo.json`` there. ``overrides`` (``key=value``) apply to both configs, e.g. a shorter budget."""
    start = time.perf_counter()
    names = [load_config(find_config(name), overrides).name for name in DEMO_CONFIGS.values()]
    out = output_folder(Path(out), names, overwrite)
    runs = [train(label, load_config(find_config(name), [f"output_dir={out}", *overrides]))
            for label, name in DEMO_CONFIGS.items()]
    cfg, e = runs[0].cfg, runs[0].cfg.eval
    datasets = build_test_sets(cfg, cfg.data.max_val_images)
    degraded = evaluate(lambda x: x, datasets, e.protocol, e.crop_border, e.pad_multiple, pad_mode=e.pad_mode)
    tables = {r.label: collect_routing(r.model, datasets, pad_multiple=e.pad_multiple, pad_mode=e.pad_mode)
              for r in runs}
    statistics = {label: table.statistics() for label, table in tables.items()}
    table = comparison_table(runs, degraded, task_order(tables[runs[0].label].tasks), e.protocol)
    print(table)
    folder = out / "figures"
    minutes = (time.perf_counter() - start) / 60
    notes = [f"Demo numbers: tiny models, {cfg.train.iterations} iterations each, seed {cfg.seed}, embedded "
             f"three-task set ({embedded_scenes()}); not comparable to the papers' numbers."]
    notes += [f"{r.label}: {label}" for r in runs for label in r.labels]
    notes.append("trained " + ", ".join(f"{r.label} in {r.minutes:.1f} min" for r in runs)
                 + f"; the whole demo took {minutes:.1f} min on the CPU")
    report = write_report(out / "report.html", "cplir demo: PromptIR against PromptIR+CPL", [
        ("Restoration per task", [], table),
        ("Training curves", [curves(runs, folder / "curves.png")], None),
        ("Examples: centre crops; PSNR of each whole image", [example_crops(runs, datasets,
                                                                            folder / "examples.png")], None),
        ("What the prompts learned", routing_figures(runs, tables, statistics, folder),
         routing_summary(runs, statistics)),
    ], notes=notes)
    results = {"degraded": {"tasks": degraded, "average": average(degraded)}}
    results.update({r.label: {"tasks": r.per_task, "average": average(r.per_task), "routing": statistics[r.label],
                              "minutes": r.minutes} for r in runs})
    (out / "demo.json").write_text(json.dumps({"protocol": e.protocol, "iterations": cfg.train.iterations,
                                               "seed": cfg.seed, "notes": notes, **results}, indent=2))
    print(f"report: {report}")
    return 0
