"""`cplir analyze`: what the prompts of a trained model learned, on a config's test sets (CPL Sec. IV-E).

Writes to the output folder ``analysis.json`` (plain keys: ``entropy_bits``, ``selection_entropy_bits``,
``mutual_information``, ...; see :mod:`cplir.analysis.routing`), the figures as PNG files and ``report.html``:

* routing entropy per task and block, selection frequency per task (Fig. 4), task–prompt mutual information;
* selection maps: images × components heat maps, images grouped by task (Fig. 11);
* residual maps: one image per task restored with the matched and with each mismatched prompt (Fig. 5);
* the cost table: parameters, FLOPs and CPU latency of dense and sparse prompts with P = 5, 10, 15 (Table IX).

The model file (a model file, training checkpoint or published weights) is read as ``cplir test`` reads it: a
training checkpoint carries its own config, others need ``--config``, and a config describing another model than
the file's is refused (:mod:`cplir.engine.testing`). An earlier analysis in the output folder is replaced only
with ``overwrite``.
"""

import json
import math
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from cplir.analysis import figures
from cplir.analysis.cost import INPUT_SIZE, cost_table, count_flops, count_parameters, cpu_latency_ms, \
    published_size_note
from cplir.analysis.report import write_report
from cplir.analysis.residuals import mismatched_outputs
from cplir.analysis.routing import RoutingTable, collect_routing
from cplir.config import Config
from cplir.engine.evaluation import build_test_sets
from cplir.engine.testing import config_for_checkpoint, load_for_inference
from cplir.inference.precision import resolve_device
from cplir.errors import ConfigError, CplirError
from cplir.metrics import psnr_torch
from cplir.outputs import prepare_output_dir, refuse_existing


def format_routing(stats: dict) -> str:
    """The routing statistics of every block as a text table (bits; MI normalised by the task entropy)."""
    lines = []
    for block, s in stats.items():
        mi = s["mutual_information"]
        lines.append(f"{block}: P = {s['num_prompts']}, top-{s['top_k']}, maximum entropy "
                     f"{s['max_entropy_bits']:.2f} bits; task-prompt mutual information "
                     f"{'n/a (one task)' if mi is None else f'{mi:.3f}'} (selection), "
                     f"{'n/a' if s['mutual_information_soft'] is None else format(s['mutual_information_soft'], '.3f')}"
                     " (routing probabilities)")
        width = max(len("all"), *map(len, s["selection_frequency"]))
        lines.append(f"  {'task':<{width}}  images  entropy  selection entropy  selection frequency")
        for task, freq in s["selection_frequency"].items():
            lines.append(f"  {task:<{width}}  {s['images'][task]:>6}  {s['entropy_bits'][task]:>7.3f}  "
                         f"{s['selection_entropy_bits'][task]:>17.3f}  {' '.join(f'{f:.2f}' for f in freq)}")
        lines.append(f"  {'all':<{width}}  {sum(s['images'].values()):>6}  {s['entropy_bits']['all']:>7.3f}")
    return "\n".join(lines)


def routing_figures(table: RoutingTable, stats: dict, folder: Path, label: str = "") -> List[Path]:
    """Selection maps, selection frequency and mean probability bars, and entropy per task, as PNG files."""
    prefix = f"{label} " if label else ""
    tasks = list(next(iter(stats.values()))["selection_frequency"])
    components = [str(c) for c in range(next(iter(stats.values()))["num_prompts"])]
    return [
        figures.routing_heatmaps(table.probs, table.tasks, folder / "selection_maps.png",
                                 f"{prefix}routing probabilities, images grouped by task"),
        figures.grouped_bars(components, [(f"{b}: selection frequency", s["selection_frequency"])
                                          for b, s in stats.items()], folder / "selection_frequency.png",
                             xlabel="prompt component", ylabel="share of the task's images"),
        figures.grouped_bars(components, [(f"{b}: mean routing probability", s["mean_probability"])
                                          for b, s in stats.items()], folder / "mean_probability.png",
                             xlabel="prompt component", ylabel="mean probability"),
        figures.grouped_bars(tasks, [(f"{b}", {"routing entropy": [s["entropy_bits"][t] for t in tasks],
                                               "selection entropy": [s["selection_entropy_bits"][t] for t in tasks]})
                                     for b, s in stats.items()], folder / "entropy.png", ylabel="bits",
                             limit=next(iter(stats.values()))["max_entropy_bits"], limit_label="log2 P"),
    ]


def _image(t: torch.Tensor) -> np.ndarray:
    return t.clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def _psnr(out: torch.Tensor, gt: torch.Tensor, cfg: Config) -> float:
    return float(psnr_torch(out.clamp(0, 1), gt, cfg.eval.protocol, cfg.eval.crop_border)[0])


def _components(chosen: dict) -> str:
    return "\n".join(f"{block}: component {c}" for block, c in chosen.items())


def residual_cases(model, datasets, cfg: Config, device: torch.device, per_task: int = 1):
    """Residual maps of the first ``per_task`` images of each task: figure cases and their JSON records."""
    e = cfg.eval
    cases, records, seen = [], [], {}
    for dataset in datasets.values():
        for index in range(len(dataset)):
            sample = dataset[index]
            if seen.get(sample["task"], 0) >= per_task:
                continue
            seen[sample["task"]] = seen.get(sample["task"], 0) + 1
            gt = sample["gt"][None].to(device)
            outs = mismatched_outputs(model, sample["lq"][None].to(device), e.pad_multiple, e.pad_mode)
            matched = _psnr(outs.matched, gt, cfg)
            mismatched = [{"components": {b: int(c[0]) for b, c in chosen.items()}, "psnr": _psnr(out, gt, cfg),
                           "mean_abs_difference": float((out - outs.matched).abs().mean())}
                          for out, chosen in zip(outs.mismatched, outs.components)]
            records.append({"task": sample["task"], "key": sample["key"], "psnr_matched": matched,
                            "mismatched": mismatched})
            selected = {b: ", ".join(map(str, i[0].tolist())) for b, i in outs.selected.items()}
            cases.append(figures.ResidualCase(
                sample["task"], _image(sample["lq"]), _image(sample["gt"]), _image(outs.matched[0]),
                f"matched: {matched:.2f} dB\n" + _components(selected),
                [_image(o[0]) for o in outs.mismatched],
                [f"mismatch {r + 1}: {m['psnr']:.2f} dB\n" + _components(m["components"])
                 for r, m in enumerate(mismatched)]))
    return cases, records


def cost_section(spec: dict, model, latency_repeats: int) -> dict:
    """The cost table of ``spec``'s network (or of the model alone when it has no prompts) and the note on what
    an operation count can show."""
    if not model.prompt_blocks():
        flops = count_flops(model.cpu(), INPUT_SIZE)
        return {"rows": [{"prompts": "none", "num_prompts": 0, "parameters": count_parameters(model),
                          "flops": flops, "latency_ms": cpu_latency_ms(model, INPUT_SIZE, latency_repeats)
                          if latency_repeats > 0 else None}], "note": None}
    note = published_size_note()
    per_p = ", ".join(f"P = {p}: +{(p - 1) * note['render_flops_per_component'] / 1e9:.1f}" for p in (5, 10, 15))
    text = (f"An operation count (torch.utils.flop_counter: matrix products and convolutions) gives the published "
            f"PromptIR at 1x3x128x128 {note['dense_flops'] / 1e9:.2f} GFLOPs with dense prompts and "
            f"{note['sparse_flops'] / 1e9:.2f} GFLOPs with sparse ones (P = 5): the same to "
            f"{100 * note['relative_difference']:.3f}%. The only difference is the weighted sum of P components "
            f"instead of one, at the prompt resolution. Dense FLOPs that grow visibly with P would require each "
            f"component to be processed at the feature resolution before mixing (resized and passed through the "
            f"3x3 convolution): {note['render_flops_per_component'] / 1e9:.2f} GFLOPs per component over the "
            f"prompt blocks, i.e. {per_p} GFLOPs over sparse prompts.")
    return {"rows": cost_table(spec, latency_repeats=latency_repeats), "published_size": note, "note": text}


def format_cost(rows: List[dict]) -> str:
    lines = [f"input {'x'.join(map(str, INPUT_SIZE))}; latency: best of the CPU forward passes",
             f"{'prompts':<8} {'P':>3} {'parameters':>12} {'GFLOPs':>9} {'latency ms':>11}"]
    for r in rows:
        latency = "n/a" if r["latency_ms"] is None else f"{r['latency_ms']:.1f}"
        lines.append(f"{r['prompts']:<8} {r['num_prompts']:>3} {r['parameters']:>12,d} {r['flops'] / 1e9:>9.3f} "
                     f"{latency:>11}")
    return "\n".join(lines)


def _json_safe(value):
    """NaN and infinity (an identical restoration has infinite PSNR) as strings: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


OUTPUTS = ("analysis.json", "report.html", "figures")


def run_analyze(model_path, out, config: Optional[str] = None, overrides: Sequence[str] = (), weights: str = "ema",
                device: str = "auto", max_images: int = 0, residual_images: int = 1, latency_repeats: int = 3,
                overwrite: bool = False) -> dict:
    """Analyse ``model_path`` on the test sets of ``config`` (or the checkpoint's own); returns the JSON payload.

    ``max_images`` > 0 keeps that many images per task; ``residual_images`` per task get residual maps;
    ``latency_repeats`` 0 skips the latency measurements.
    """
    out = Path(out)
    cfg = config_for_checkpoint(model_path, config, overrides)
    dev = resolve_device(device)
    if not cfg.data.test:
        raise ConfigError("the config has no test sets (data.test is empty); add one or pass --set")
    prepare_output_dir(out, "analysis folder")
    refuse_existing(out, OUTPUTS, overwrite)
    model = load_for_inference(cfg, model_path, weights)[0].to(dev)
    datasets = build_test_sets(cfg, max_images)
    table = collect_routing(model, datasets, dev, cfg.eval.pad_multiple, cfg.eval.pad_mode)
    payload = {"model": str(model_path), "spec": model.spec, "weights": weights, "config": cfg.name,
               "protocol": cfg.eval.protocol, "images": len(table.tasks)}
    notes, sections = [], []
    fig_dir = out / "figures"
    if table.blocks:
        stats = table.statistics()
        payload.update(blocks=stats, calibration=table.calibration())
        sections.append(("Routing: entropy, selection and task-prompt mutual information", [], format_routing(stats)))
        sections.append(("Selection maps and frequencies (CPL Figs. 11 and 4)",
                         routing_figures(table, stats, fig_dir), None))
        cases, records = residual_cases(model, datasets, cfg, dev, residual_images)
        payload["residuals"] = records
        sections.append((f"Residual maps (CPL Fig. 5), PSNR under the {cfg.eval.protocol} protocol",
                         [figures.residual_figure(cases, fig_dir / "residual_maps.png")], None))
    else:
        notes.append(f"{model.spec['name']} has no prompt blocks: there is no routing to analyse, only its cost.")
    try:
        cost = cost_section(model.spec, model, latency_repeats)
    except CplirError as err:  # a backbone that cannot be built with other prompt kinds or counts
        cost = {"rows": [], "note": f"no cost table: {err}"}
    payload["cost"] = cost
    sections.append(("Cost (CPL Table IX)", [], "\n\n".join(filter(None, [format_cost(cost["rows"]),
                                                                          cost["note"]]))))
    (out / "analysis.json").write_text(json.dumps(_json_safe(payload), indent=2))
    report = write_report(out / "report.html", f"cplir analyze: {Path(model_path).name}", sections,
                          notes=notes + [f"model {model.spec['name']} from {model_path} ({weights} weights); test "
                                         f"sets of config {cfg.name}, {len(table.tasks)} images"])
    print(f"wrote {out / 'analysis.json'} and {report}")
    return payload
