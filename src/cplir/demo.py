"""`make demo`: train PromptIR+CPL on the embedded data set on the CPU, evaluate it, and write an HTML report.

The embedded data set (scikit-image's photographs with synthetic three-task degradations) makes this run
without any download; the perceptual network of CPR uses random weights here, which the report says.
"""

import shutil
import time
from pathlib import Path

import torch

from cplir.analysis.plots import image_grid, line_plot
from cplir.analysis.report import write_report
from cplir.config import load_config
from cplir.engine.distributed import DistInfo
from cplir.engine.evaluation import format_table
from cplir.engine.run_log import read_log
from cplir.engine.trainer import Trainer
from cplir.errors import ConfigError
from cplir.inference import run_padded

DEMO_CONFIG = "embedded-three-task-cpl.yaml"


def find_config(name: str = DEMO_CONFIG) -> Path:
    """``configs/<name>`` in the working directory or in the source checkout this package runs from."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "configs" / name
        if candidate.is_file():
            return candidate
    raise ConfigError(f"cannot find configs/{name}: run the demo from the cplir checkout (make demo)")


def run_demo(out: str = "outputs/demo", overrides=()) -> int:
    out = Path(out)
    cfg = load_config(find_config(), [f"output_dir={out}", *overrides])
    shutil.rmtree(cfg.run_dir, ignore_errors=True)  # the demo's own output: each run starts afresh
    start = time.perf_counter()
    trainer = Trainer(cfg, DistInfo(), progress=True)
    for label in trainer.feature_labels():
        print(f"note: {label}")
    try:
        trainer.fit()
    finally:
        trainer.logger.close()
    minutes = (time.perf_counter() - start) / 60
    table = format_table(trainer.last_per_task, cfg.eval.protocol, cfg.eval.crop_border)
    print(table)

    figures = out / "figures"
    train_log, val_log = read_log(cfg.run_dir, "train"), read_log(cfg.run_dir, "val")
    def series(records, *keys):
        return {k: ([r["iteration"] for r in records], [r[k] for r in records]) for k in keys if k in records[0]}

    curves = [line_plot(series(train_log, "loss", "l1"), figures / "train_loss.png", title="training loss",
                        ylabel="loss")]
    if "cpr_pos" in train_log[0]:  # the CPR distances live on their own scale
        curves.append(line_plot(series(train_log, "cpr_pos", "cpr_neg"), figures / "cpr_terms.png",
                                title="CPR: L_pos (to the clean image), L_neg (mismatched prompts to I+)",
                                ylabel="VGG distance"))
    if val_log:
        curves.append(line_plot(series(val_log, "l1"), figures / "val_l1.png", title="validation L1 (EMA weights)",
                                ylabel="L1"))
        curves.append(line_plot(series(val_log, "psnr"), figures / "val_psnr.png",
                                title=f"validation PSNR ({cfg.eval.protocol})", ylabel="dB"))
    examples = _example_grid(trainer, figures / "examples.png")
    notes = trainer.feature_labels()
    report = write_report(out / "report.html", f"cplir demo: {cfg.name}", [
        ("Validation after training", [], table),
        ("Curves", curves, None),
        ("Examples: degraded / restored / clean", [examples], None),
    ], notes=notes + [f"trained {cfg.train.iterations} iterations in {minutes:.1f} min on {trainer.device}"])
    print(f"report: {report}")
    return 0


@torch.no_grad()
def _example_grid(trainer: Trainer, path: Path) -> Path:
    """One test image per task: degraded, restored (EMA weights), clean."""
    model = trainer.ema.module if trainer.ema is not None else trainer.net
    model.eval()
    rows, titles, seen = [], [], set()
    for dataset in trainer.val_sets.values():
        for index in range(len(dataset)):
            sample = dataset[index]
            if sample["task"] in seen:
                continue
            seen.add(sample["task"])
            out = run_padded(model, sample["lq"][None].to(trainer.device), trainer.cfg.eval.pad_multiple)[0]
            rows.append([t.permute(1, 2, 0).cpu().numpy() for t in (sample["lq"], out.clamp(0, 1), sample["gt"])])
            titles.append(sample["task"])
    return image_grid(rows, path, column_titles=["degraded", "restored", "clean"], row_titles=titles,
                      cell=200) if rows else path

