"""``cplir study``: does CPL do what the papers say, at CPU scale? One budget, one seed list, five variants.

Every variant trains the tiny model of the embedded three-task demo (configs/embedded-three-task-*.yaml) with the
same data, schedule, iterations and seeds, and differs only in the method:

* ``promptir``: dense prompts (PromptIR, NeurIPS 2023);
* ``spm``: the Sparse Prompt Module alone (top-1 of 5, CPL Sec. III-B), no CPR;
* ``cpl``: SPM + Contrastive Prompt Regularisation (CPL Sec. III-C) on the download-free pixel/gradient pyramid;
* ``cpl_vgg``: SPM + CPR on a seeded random VGG19 (the papers' feature network, without its ImageNet weights);
* ``cpl_mclir``: ``cpl`` plus MCLIR's SPN loss (lagged negative models, random VGG16).

Each run is scored with its EMA weights on every image of the embedded test split (promptir protocol, per task and
averaged) and its prompt routing analysed (:mod:`cplir.analysis.routing`: routing entropy, selection entropy,
task-prompt mutual information). The degraded inputs are scored too, as the do-nothing baseline. The summary gives
mean and spread over seeds and each variant's difference from PromptIR paired by seed; a difference within the
seed spread is called noise. docs/evidence.md reports a full run.

The study folder holds ``runs/`` (one training run folder per variant and seed, trained by ``cplir train`` in a
child process, ``--jobs`` at a time), ``results/`` (each run's scores, written once it is scored),
``study.json``, ``summary.md``, ``report.html`` and ``figures/``. A study that was stopped (Ctrl-C, a kill, a
reboot) continues where it stopped when the same command is run again: scored runs are kept, unfinished ones
resume from their newest checkpoint (bit-identical to an uninterrupted run, see docs/design.md).
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from cplir.analysis import figures
from cplir.analysis.report import write_report
from cplir.analysis.routing import collect_routing, task_order
from cplir.config import load_config
from cplir.demo import find_config
from cplir.engine.checkpoint import list_checkpoints
from cplir.engine.evaluation import average, build_test_sets, evaluate
from cplir.engine.run_log import read_log
from cplir.engine.testing import config_for_checkpoint, load_for_inference
from cplir.errors import ConfigError, CplirError
from cplir.outputs import prepare_output_dir, write_text_atomic


@dataclass(frozen=True)
class Variant:
    """One arm of the study: a demo config and the overrides that make it this variant."""

    label: str
    config: str
    overrides: tuple
    description: str


# SPN's published refresh intervals (100/200/500/1000 iterations of 500k) are scaled down as in
# configs/embedded-mclir.yaml, so every negative model is refreshed several times in a CPU-sized run. Its weight is
# raised from the published 0.001 to 0.1: with a random VGG16 the published weight made the SPN term 1.5e-4 of the
# L1 loss in a 40-iteration trial (a no-op), 0.1 brings it to about 1.5%, inside the 0.01-0.1x of the
# reconstruction loss the MCLIR authors advise.
VARIANTS: Dict[str, Variant] = {
    "promptir": Variant("PromptIR", "embedded-three-task-promptir.yaml", (), "dense prompts (PromptIR)"),
    "spm": Variant("SPM", "embedded-three-task-cpl.yaml", ("loss.cpr.enabled=false",),
                   "sparse prompts, top-1 of 5, no CPR"),
    "cpl": Variant("CPL", "embedded-three-task-cpl.yaml", (),
                   "SPM + CPR (m = 4, alpha 0.01) on the pixel/gradient pyramid"),
    "cpl_vgg": Variant("CPL (random VGG)", "embedded-three-task-cpl.yaml", ("loss.cpr.features=vgg",),
                       "SPM + CPR on a seeded random VGG19 (relu1_1-relu3_1)"),
    "cpl_mclir": Variant("CPL+MCLIR", "embedded-three-task-cpl.yaml",
                         ("loss.spn.enabled=true", "loss.spn.vgg_weights=random",
                          "loss.spn.intervals=[10,20,50,100]", "loss.spn.lam=0.1"),
                         "CPL + SPN (K = 4 lagged negatives every 10/20/50/100 iterations, lambda 0.1, "
                         "random VGG16)"),
}
BASELINE = "promptir"
AUXILIARY_TERMS = ("cpr", "spn")  # the logged loss terms besides l1


@dataclass
class StudySettings:
    """What every run of a study shares; stored in the study folder so a continued study cannot change it."""

    iterations: int = 800
    seeds: List[int] = field(default_factory=lambda: [0, 1])
    variants: List[str] = field(default_factory=lambda: list(VARIANTS))
    evaluations: int = 5  # validations per run (for the curves), the last at the end
    overrides: List[str] = field(default_factory=list)  # extra --set for every run (all variants alike)

    def check(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown study variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
        if not self.variants or not self.seeds:
            raise ConfigError("a study needs at least one variant and one seed")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.variants)) != len(self.variants):
            raise ConfigError("--seeds and --variants must not repeat an entry")
        if self.iterations < 1 or self.evaluations < 1:
            raise ConfigError("--iterations and --evaluations must be at least 1")

    def run_overrides(self, variant: str, seed: int, runs: Path) -> List[str]:
        """The ``--set`` values of one run: its variant's, then the study's budget and seed, then the extras."""
        every = max(1, self.iterations // self.evaluations)
        return [*VARIANTS[variant].overrides, f"name={run_name(variant, seed)}", f"output_dir={runs}",
                f"seed={seed}", f"train.iterations={self.iterations}", f"train.val_every={every}",
                f"train.save_every={max(1, min(every, 50))}", "train.keep_checkpoints=2",
                "data.max_val_images=0", *self.overrides]


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-s{seed}"


# ---------------------------------------------------------------------------------------------------------------
# Training: child processes


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the child gets SIGTERM when the study process dies, even by kill -9 (no orphaned trainers)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: object


def _trained_to(run_dir: Path) -> int:
    """The newest iteration the run's training log reached (0 before the first record)."""
    records = [r for r in read_log(run_dir) if r["kind"] in ("train", "val")]
    return max((r["iteration"] for r in records), default=0)


def _finished(run_dir: Path, iterations: int) -> bool:
    newest = list_checkpoints(run_dir / "checkpoints")
    return bool(newest) and newest[-1].stem == f"iter_{iterations:08d}"


def train_runs(settings: StudySettings, todo: Sequence[tuple], runs: Path, jobs: int, threads: int,
               progress: bool = True) -> Dict[str, str]:
    """Train (or continue) the runs ``todo`` = [(variant, seed)], ``jobs`` child processes at a time with
    ``threads`` threads each; returns {run name: error} of the runs that failed."""
    pending = list(todo)
    running: List[Child] = []
    failed: Dict[str, str] = {}
    done_iterations = 0
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    bar = tqdm(total=len(todo) * settings.iterations, desc="study", unit="it", disable=not progress,
               dynamic_ncols=True)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                variant, seed = pending.pop(0)
                name = run_name(variant, seed)
                config = find_config(VARIANTS[variant].config)
                command = [sys.executable, "-m", "cplir", "train", "--config", str(config), "--resume", "auto",
                           "--no-progress"]
                for value in settings.run_overrides(variant, seed, runs):
                    command += ["--set", value]
                log = open(runs / f"{name}.log", "a")
                log.write(f"\n$ {' '.join(command)}\n")
                log.flush()
                running.append(Child(name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                            env=env, preexec_fn=_die_with_parent), log))
            time.sleep(1.0)
            for child in [c for c in running if c.process.poll() is not None]:
                running.remove(child)
                child.log.close()
                if child.process.returncode != 0:
                    tail = (runs / f"{child.name}.log").read_text().strip().splitlines()[-1:]
                    failed[child.name] = f"exit status {child.process.returncode}: {' '.join(tail)}"
                    bar.write(f"run {child.name} failed ({failed[child.name]}); its log: {runs / child.name}.log")
                done_iterations += settings.iterations
            current = done_iterations + sum(_trained_to(runs / c.name) for c in running)
            bar.update(max(0, current - bar.n))
            bar.set_postfix_str(", ".join(c.name for c in running))
    finally:
        for child in running:  # Ctrl-C or an error: stop the trainers; their checkpoints stay for a continuation
            child.process.terminate()
        for child in running:
            child.process.wait()
            child.log.close()
        bar.close()
    return failed


# ---------------------------------------------------------------------------------------------------------------
# Scoring


def score_run(run_dir: Path, iterations: int) -> dict:
    """The final EMA weights of a trained run on every embedded test image: per-task scores, routing statistics,
    and the curves of its log."""
    checkpoint = list_checkpoints(run_dir / "checkpoints")[-1]
    cfg = config_for_checkpoint(checkpoint)
    model, weights = load_for_inference(cfg, checkpoint, "ema")
    e = cfg.eval
    datasets = build_test_sets(cfg, 0)
    per_task = evaluate(model, datasets, e.protocol, e.crop_border, e.pad_multiple, pad_mode=e.pad_mode)
    table = collect_routing(model, datasets, pad_multiple=e.pad_multiple, pad_mode=e.pad_mode)
    train_log, val_log = read_log(run_dir, "train"), read_log(run_dir, "val")
    rates = [r["it_per_s"] for r in train_log if r.get("it_per_s")]
    # how large each regulariser is against the reconstruction loss (a term too small to matter explains a tie)
    ratios = {term: float(np.median([abs(r[term]) / r["l1"] for r in train_log if r.get("l1")]))
              for term in AUXILIARY_TERMS if train_log and term in train_log[-1]}
    return {"checkpoint": str(checkpoint), "iterations": iterations, "weights": weights,
            "feature_labels": next((r.get("feature_labels", []) for r in read_log(run_dir, "run")), []),
            "tasks": per_task, "average": average(per_task),
            "routing": table.statistics() if table.blocks else {},
            "seconds_per_iteration": float(np.median([1 / r for r in rates])) if rates else None,
            "term_to_l1": ratios,
            "curves": {"val": [{k: r[k] for k in ("iteration", "psnr", "ssim", "l1")} for r in val_log],
                       "train": [{k: v for k, v in r.items() if k not in ("kind", "time")} for r in train_log]}}


def score_runs(settings: StudySettings, order: Sequence[tuple], runs: Path, scored: Path,
               failed: Dict[str, str]) -> Dict[str, dict]:
    """The scores of every trained run of ``order``, computed once and kept in ``scored``; runs that did not
    finish are added to ``failed``."""
    results = {}
    for variant, seed in order:
        name = run_name(variant, seed)
        path = scored / f"{name}.json"
        if not path.is_file():
            if name in failed or not _finished(runs / name, settings.iterations):
                failed.setdefault(name, "not trained to the end")
                continue
            write_text_atomic(path, json.dumps(score_run(runs / name, settings.iterations), indent=2))
        results[name] = json.loads(path.read_text())
    return results


def degraded_baseline(settings: StudySettings) -> dict:
    """The degraded inputs scored against their targets, as the runs are (the do-nothing baseline)."""
    cfg = load_config(find_config(VARIANTS[BASELINE].config), ["data.max_val_images=0", *settings.overrides])
    e = cfg.eval
    per_task = evaluate(lambda x: x, build_test_sets(cfg, 0), e.protocol, e.crop_border, e.pad_multiple,
                        pad_mode=e.pad_mode)
    return {"tasks": per_task, "average": average(per_task)}


# ---------------------------------------------------------------------------------------------------------------
# Summary


def _spread(values: Sequence[float]) -> dict:
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def summarise(results: Dict[str, dict], settings: StudySettings) -> dict:
    """Per variant: mean and spread over seeds of the scores and routing statistics; per variant against PromptIR:
    the per-seed differences and whether their mean exceeds the seed spread."""
    summary = {}
    for variant in settings.variants:
        runs = [results[run_name(variant, s)] for s in settings.seeds if run_name(variant, s) in results]
        if not runs:
            continue
        tasks = list(runs[0]["tasks"])
        entry = {"label": VARIANTS[variant].label, "seeds": [s for s in settings.seeds
                                                             if run_name(variant, s) in results],
                 "psnr": _spread([r["average"]["psnr"] for r in runs]),
                 "ssim": _spread([r["average"]["ssim"] for r in runs]),
                 "tasks": {t: {"psnr": _spread([r["tasks"][t]["psnr"] for r in runs]),
                               "ssim": _spread([r["tasks"][t]["ssim"] for r in runs])} for t in tasks},
                 "routing": {}}
        for block in runs[0]["routing"]:
            stats = [r["routing"][block] for r in runs]
            mi = [s["mutual_information"] for s in stats if s["mutual_information"] is not None]
            soft = [s["mutual_information_soft"] for s in stats if s["mutual_information_soft"] is not None]
            entry["routing"][block] = {
                "entropy_bits": _spread([s["entropy_bits"]["all"] for s in stats]),
                "max_entropy_bits": stats[0]["max_entropy_bits"],
                "selection_entropy_bits": _spread([np.mean(list(s["selection_entropy_bits"].values()))
                                                   for s in stats]),
                "mutual_information": _spread(mi) if mi else None,
                "mutual_information_soft": _spread(soft) if soft else None}
        times = [r["seconds_per_iteration"] for r in runs if r["seconds_per_iteration"]]
        entry["seconds_per_iteration"] = float(np.mean(times)) if times else None
        entry["term_to_l1"] = {term: float(np.mean([r["term_to_l1"][term] for r in runs]))
                               for term in runs[0]["term_to_l1"]}
        summary[variant] = entry
    base = summary.get(BASELINE)
    for variant, entry in summary.items():
        if variant == BASELINE or base is None:
            continue
        paired = [s for s in entry["seeds"] if s in base["seeds"]]
        if not paired:
            continue
        deltas = [results[run_name(variant, s)]["average"]["psnr"] - results[run_name(BASELINE, s)]["average"]["psnr"]
                  for s in paired]
        spread = max(entry["psnr"]["max"] - entry["psnr"]["min"], base["psnr"]["max"] - base["psnr"]["min"])
        mean = float(np.mean(deltas))
        entry["vs_promptir"] = {"seeds": paired, "psnr_deltas": deltas, "mean": mean, "seed_spread": spread,
                                "beyond_noise": len(paired) > 1 and abs(mean) > spread
                                and all(np.sign(d) == np.sign(mean) for d in deltas)}
    return summary


def _pm(s: Optional[dict], digits: int = 2) -> str:
    if s is None:
        return "n/a"
    return f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}" if len(s["values"]) > 1 else f"{s['mean']:.{digits}f}"


def summary_markdown(summary: dict, degraded: dict, settings: StudySettings, notes: Sequence[str]) -> str:
    tasks = task_order(list(degraded["tasks"]))
    lines = [f"PSNR (dB, promptir protocol, EMA weights) on the embedded test split, mean ± sd over seeds "
             f"{', '.join(map(str, settings.seeds))}; {settings.iterations} iterations per run.", "",
             "| variant | seeds | " + " | ".join(tasks) + " | average PSNR | average SSIM | Δ vs PromptIR (per seed) "
             "| s / iteration |",
             "| --- | --- | " + " | ".join("---:" for _ in tasks) + " | ---: | ---: | --- | ---: |",
             "| degraded input | - | " + " | ".join(f"{degraded['tasks'][t]['psnr']:.2f}" for t in tasks)
             + f" | {degraded['average']['psnr']:.2f} | {degraded['average']['ssim']:.3f} | | |"]
    for variant, e in summary.items():
        delta = e.get("vs_promptir")
        delta_text = "" if delta is None else (
            f"{delta['mean']:+.2f} ({', '.join(f'{d:+.2f}' for d in delta['psnr_deltas'])})"
            + ("" if delta["beyond_noise"] else ", noise"))
        time_text = f"{e['seconds_per_iteration']:.2f}" if e["seconds_per_iteration"] else "n/a"
        lines.append(f"| {e['label']} | {len(e['seeds'])} | " + " | ".join(_pm(e["tasks"][t]["psnr"]) for t in tasks)
                     + f" | {_pm(e['psnr'])} | {_pm(e['ssim'], 3)} | {delta_text} | {time_text} |")
    lines += ["", "Prompt routing per block (mean ± sd over seeds): routing entropy in bits (maximum log2 P), "
              "mean selection entropy over tasks, and the task-prompt mutual information normalised by the task "
              "entropy (from the top-1 selections; from the routing probabilities).", "",
              "| variant | block | routing entropy | selection entropy | mutual information | MI (probabilities) |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for e in summary.values():
        for block, r in e["routing"].items():
            lines.append(f"| {e['label']} | {block} | {_pm(r['entropy_bits'], 3)} of {r['max_entropy_bits']:.3f} | "
                         f"{_pm(r['selection_entropy_bits'], 3)} | {_pm(r['mutual_information'], 3)} | "
                         f"{_pm(r['mutual_information_soft'], 3)} |")
    lines += ["", "Size of each regulariser against the L1 loss (median over the training log, mean over seeds): "
              + "; ".join(f"{e['label']} " + ", ".join(f"{t} {v:.2g}" for t, v in e["term_to_l1"].items())
                          for e in summary.values() if e["term_to_l1"]) + "."]
    lines += ["", "A difference from PromptIR is called noise unless every seed's difference has the sign of the "
              "mean and the mean exceeds the seed spread (max - min of the average PSNR over seeds, the larger of "
              "the two variants').", ""]
    lines += [f"* {n}" for n in notes]
    return "\n".join(lines) + "\n"


def study_figures(results: Dict[str, dict], summary: dict, settings: StudySettings, folder: Path) -> List[Path]:
    """Validation PSNR and training L1 curves (mean over seeds), per-task PSNR bars, routing entropy and mutual
    information bars."""
    val, train = {}, {}
    for variant, entry in summary.items():
        runs = [results[run_name(variant, s)] for s in entry["seeds"]]
        for store, kind, key in ((val, "val", "psnr"), (train, "train", "l1")):
            points: Dict[int, list] = {}
            for run in runs:
                for record in run["curves"][kind]:
                    if key in record:
                        points.setdefault(record["iteration"], []).append(record[key])
            xs = sorted(i for i, v in points.items() if len(v) == len(runs))
            store[entry["label"]] = (xs, [float(np.mean(points[i])) for i in xs])
    paths = [figures.line_charts([figures.Panel("validation PSNR (EMA weights), mean over seeds", "dB", val),
                                  figures.Panel("training L1, mean over seeds", "L1", train, log_scale=True)],
                                 folder / "curves.png")]
    tasks = task_order(list(next(iter(summary.values()))["tasks"]))
    paths.append(figures.grouped_bars([*tasks, "average"], [("PSNR per task, mean over seeds", {
        e["label"]: [e["tasks"][t]["psnr"]["mean"] for t in tasks] + [e["psnr"]["mean"]]
        for e in summary.values()})], folder / "psnr.png", ylabel="dB"))
    routed = {v: e for v, e in summary.items() if e["routing"]}
    if routed:
        blocks = list(next(iter(routed.values()))["routing"])
        first = next(iter(routed.values()))["routing"][blocks[0]]
        paths.append(figures.grouped_bars(blocks, [
            ("routing entropy", {e["label"]: [e["routing"][b]["entropy_bits"]["mean"] for b in blocks]
                                 for e in routed.values()}),
            ("task-prompt mutual information / H(task)",
             {e["label"]: [np.nan if e["routing"][b]["mutual_information"] is None
                           else e["routing"][b]["mutual_information"]["mean"] for b in blocks]
              for e in routed.values()})], folder / "routing.png", xlabel="prompt block",
            ylabel="bits / normalised MI", limit=first["max_entropy_bits"], limit_label="log2 P"))
    return paths


# ---------------------------------------------------------------------------------------------------------------
# The driver


def _check_settings(out: Path, settings: StudySettings) -> None:
    """A continued study keeps the budget and extra overrides it was started with (runs must be comparable)."""
    path = out / "settings.json"
    if path.is_file():
        started = json.loads(path.read_text())
        for key in ("iterations", "evaluations", "overrides"):
            if started.get(key) != getattr(settings, key):
                raise ConfigError(f"the study in {out} was started with {key} {started.get(key)!r}, not "
                                  f"{getattr(settings, key)!r}: run it with the same settings to continue it, or "
                                  "choose another --out")
    write_text_atomic(path, json.dumps(asdict(settings), indent=2))


def run_study(out: str = "outputs/study", settings: Optional[StudySettings] = None, jobs: int = 0,
              threads: int = 0, progress: bool = True) -> int:
    """Train, score and summarise the study (see the module docstring) in ``out``; continue it if it was started.
    ``jobs`` 0: one run per CPU core (at most 2); ``threads`` 0: the cores shared out among the jobs (more threads
    than free cores make PyTorch's CPU kernels many times slower, see docs/benchmarks.md). Returns the exit
    status: 1 when a run failed (the others are still scored and summarised)."""
    settings = settings or StudySettings()
    settings.check()
    for variant in settings.variants:  # a bad --set fails here, in one line, before anything is written
        load_config(find_config(VARIANTS[variant].config), settings.run_overrides(variant, settings.seeds[0],
                                                                                  Path(out) / "runs"))
    out = prepare_output_dir(Path(out), "study folder")
    _check_settings(out, settings)
    runs, scored = prepare_output_dir(out / "runs"), prepare_output_dir(out / "results")
    cores = os.cpu_count() or 1
    jobs = jobs or min(2, cores)
    threads = threads or max(1, cores // jobs)
    order = [(v, s) for s in settings.seeds for v in settings.variants]  # seed by seed: early results span variants
    todo = [(v, s) for v, s in order if not (scored / f"{run_name(v, s)}.json").is_file()
            and not _finished(runs / run_name(v, s), settings.iterations)]
    print(f"study in {out}: {len(order)} runs ({len(settings.variants)} variants x {len(settings.seeds)} seeds, "
          f"{settings.iterations} iterations each); {len(order) - len(todo)} already trained, {len(todo)} to train "
          f"with {jobs} job(s) of {threads} thread(s)")
    start = time.perf_counter()
    failed = train_runs(settings, todo, runs, jobs, threads, progress) if todo else {}
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # scoring shares the machine as the trainers did
    try:
        results = score_runs(settings, order, runs, scored, failed)
    finally:
        torch.set_num_threads(previous_threads)
    if not results:
        raise CplirError(f"no run of the study finished: {'; '.join(f'{k}: {v}' for k, v in failed.items())}")
    degraded = degraded_baseline(settings)
    summary = summarise(results, settings)
    notes = [f"{v}: {VARIANTS[v].description}" for v in settings.variants]
    notes += [f"{k}: {', '.join(r['feature_labels'])}" for k, r in results.items()
              if r["feature_labels"] and k.endswith(f"-s{settings.seeds[0]}")]
    notes.append(f"this invocation took {(time.perf_counter() - start) / 60:.1f} min with {jobs} job(s) of "
                 f"{threads} thread(s) on {cores} CPU core(s); s / iteration is the median training step time "
                 "from the logs, measured while the jobs shared the machine")
    if failed:
        notes.append("not finished: " + "; ".join(f"{k} ({v})" for k, v in failed.items()))
    markdown = summary_markdown(summary, degraded, settings, notes)
    folder = prepare_output_dir(out / "figures")
    images = study_figures(results, summary, settings, folder)
    write_text_atomic(out / "study.json", json.dumps({"settings": asdict(settings), "degraded": degraded,
                                                      "summary": summary, "runs": results,
                                                      "failed": failed}, indent=2, default=_json_default))
    write_text_atomic(out / "summary.md", markdown)
    report = write_report(out / "report.html", "cplir study: PromptIR, SPM, CPL and MCLIR on the embedded data",
                          [("Results", [], markdown), ("Curves", images[:1], None),
                           ("Per task and routing", images[1:], None)], notes=[])
    print(markdown)
    print(f"report: {report}")
    return 1 if failed else 0


def _json_default(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
